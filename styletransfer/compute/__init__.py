"""Where the work runs: devices, several machines on TensorFlow's runtime, and the host's memory."""
