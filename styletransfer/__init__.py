"""neural-style's modules below its programs (neural_style.py, stylize.py, vgg.py, reproduce.py and app.py, at
the top), one subpackage per job; docs/development.md, Layout, lists them."""
