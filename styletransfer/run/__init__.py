"""A run of the command line's options: the option table, the checked run of an image, a clip or a batch, what the
programs print."""
