import JSON
import OCI

/// Rebase (Platform API): the app's layers moved onto a new run image without a rebuild. The
/// lifecycle label says where the old run image ends; everything above it is kept by digest.
public enum Rebaser {
    static func fail(_ message: String) -> LifecycleError {
        LifecycleError(message, exitCode: LifecycleError.Code.rebaseFailed)
    }

    /// `layersElsewhere`: the layouts hold manifests and configs only and the layers stay where
    /// they are (a registry, which the caller pushes to); the run image's blobs are not copied.
    public static func rebase(_ image: Image, in layout: ImageLayout, tag: String, onto run: Exporter.RunImage,
                              progress: any ProgressReporter, layersElsewhere: Bool = false) throws(LifecycleError) -> Image {
        guard var metadata = LifecycleMetadata(label: image.config.labels[ImageLabel.lifecycleMetadata]) else {
            throw fail("\(layout.path):\(tag) has no \(ImageLabel.lifecycleMetadata) label; it was not built by a buildpacks lifecycle")
        }
        let old = run.image.config.platform
        guard image.config.platform.os == old.os, image.config.platform.architecture == old.architecture,
              (image.config.platform.variant ?? "") == (old.variant ?? "") else {
            throw fail("the run image \(run.name) is \(old.description) but the app image is \(image.config.platform.description)")
        }
        let keep: Int
        if let top = metadata.runImageTopLayer {
            guard let index = image.config.diffIDs.firstIndex(of: top) else {
                throw fail("\(layout.path):\(tag): the run image's top layer \(top) is not among the image's layers")
            }
            keep = index + 1
        } else {
            keep = 0
        }
        do throws(OCIError) {
            for layer in run.image.manifest.layers where !layersElsewhere { try layout.importBlob(layer, from: run.layout) }
            var config = image.config
            let appLayers = Array(image.manifest.layers[keep...])
            config.diffIDs = run.image.config.diffIDs + Array(image.config.diffIDs[keep...])
            // One history entry per layer on both sides, or no history: never a history that
            // names the wrong layers.
            func isWhole(_ c: ImageConfig) -> Bool { !c.history.contains(where: \.emptyLayer) && c.history.count == c.diffIDs.count }
            config.history = isWhole(image.config) && isWhole(run.image.config)
                ? run.image.config.history + Array(image.config.history[keep...]) : []
            metadata.runImageTopLayer = run.image.config.diffIDs.last
            metadata.runImageReference = run.image.descriptor.digest.description
            metadata.runImage = run.name
            config.labels[ImageLabel.lifecycleMetadata] = metadata.json.text
            let configBlob = try layout.writeJSON(config.json, mediaType: MediaType.config)
            let manifest = ImageManifest(config: configBlob, layers: run.image.manifest.layers + appLayers)
            let manifestBlob = try layout.writeJSON(manifest.json, mediaType: MediaType.manifest)
            try layout.setTag(tag, to: manifestBlob)
            progress.line("Rebased \(layout.path):\(tag) onto \(run.name): \(run.image.manifest.layers.count) run image layers, \(appLayers.count) app layers kept")
            return Image(descriptor: manifestBlob, manifest: manifest, config: config)
        } catch {
            var failure = fail("rebase: \(error)")
            failure.cause = error
            throw failure
        }
    }
}
