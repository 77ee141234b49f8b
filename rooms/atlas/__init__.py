"""The atlas room kind: the galaxy's first discoveries of Knowledge Graph fragments (``room``) and its HTTP routes (``http``)."""
