"""The network's weights files besides what vgg.py reads itself: the downloads, the quantized copy, the normalized
network."""
