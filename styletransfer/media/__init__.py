"""The files a run reads and writes: images, clips, optical flow, colour preservation, atomic writes."""
