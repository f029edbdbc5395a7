//! layerfs: materialises a container's root filesystem.
