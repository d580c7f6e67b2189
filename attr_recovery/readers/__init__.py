"""Reading faces: recognition models as one interface (images -> z), the attribute
reader (images -> attributes) and landmark geometry (landmarks -> pose, descriptors)."""
