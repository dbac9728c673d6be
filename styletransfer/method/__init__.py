"""The method's equations and their evaluation: the loss terms and the objective, untiled and in exact tiles."""
