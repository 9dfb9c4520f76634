/// The media types of image-spec `media-types.md`, and Docker's schema 2 equivalents.
public enum MediaType {
    public static let index = "application/vnd.oci.image.index.v1+json"
    public static let manifest = "application/vnd.oci.image.manifest.v1+json"
    public static let config = "application/vnd.oci.image.config.v1+json"
    public static let layer = "application/vnd.oci.image.layer.v1.tar"
    public static let layerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let layerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    // Docker's schema 2, which skopeo keeps when copying some images into a layout.
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    static let dockerLayer = "application/vnd.docker.image.rootfs.diff.tar"

    public static func isLayer(_ type: String) -> Bool {
        [layer, layerGzip, layerZstd, dockerLayer, dockerLayerGzip,
         "application/vnd.oci.image.layer.nondistributable.v1.tar",
         "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"].contains(type)
    }
}

/// The annotation that names a manifest in a layout's `index.json`.
public let refNameAnnotation = "org.opencontainers.image.ref.name"
