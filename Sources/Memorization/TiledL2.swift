import Imaging

/// Carlini et al. 2023 ("Extracting Training Data from Diffusion Models"), tiled ℓ2: both images as RGB in
/// [0, 1], split into 128×128 tiles, the normalized ℓ2 `sqrt(mean((a − b)²))` of each tile pair, and the
/// maximum over tiles. A generation counts as extracted when it is below 0.15 (docs/algorithms.md#tiled-l2-distance).
public enum TiledL2 {
    /// Carlini et al.'s extraction threshold.
    public static let extractionThreshold: Float = 0.15
    /// Tile side in pixels.
    public static let tileSize = 128

    /// The tiled ℓ2 distance between a generated image and a training image. The training image is resized
    /// to the generated image's size first when they differ (`Resample.bicubicPIL`); tiles cover the image on
    /// a 128-pixel grid from the top left, edge tiles being smaller when the size is not a multiple of 128.
    public static func distance(generated: RGBImage, training: RGBImage) throws -> Float {
        let other =
            (training.width == generated.width && training.height == generated.height)
            ? training : try Resample.bicubicPIL(training, width: generated.width, height: generated.height)
        let w = generated.width
        let h = generated.height
        var worst: Float = 0
        var ty = 0
        while ty < h {
            var tx = 0
            while tx < w {
                var sum: Double = 0
                let y1 = min(ty + tileSize, h)
                let x1 = min(tx + tileSize, w)
                for y in ty..<y1 {
                    for x in tx..<x1 {
                        let o = (y * w + x) * 3
                        for c in 0..<3 {
                            let d = (Double(generated.pixels[o + c]) - Double(other.pixels[o + c])) / 255
                            sum += d * d
                        }
                    }
                }
                let n = Double((y1 - ty) * (x1 - tx) * 3)
                worst = max(worst, Float((sum / n).squareRoot()))
                tx += tileSize
            }
            ty += tileSize
        }
        return worst
    }

    /// Whether `distance` is below the extraction threshold.
    public static func isExtracted(generated: RGBImage, training: RGBImage, threshold: Float = extractionThreshold)
        throws -> Bool
    {
        try distance(generated: generated, training: training) < threshold
    }
}
