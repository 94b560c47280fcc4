import Foundation
import Tensors

extension VarAudit.Bench {
    /// Times every 3×3 convolution shape of the SD v1 UNet (batch 2) and VAE decoder (batch 1) at `--size`
    /// through im2col, Winograd F(2×2) and F(4×4), and the method `convolution` picks: the data behind the
    /// kernel selection.
    func runConvolutionBenchmark() throws {
        let latent = size / 8
        // (batch, in, out, side)
        var shapes: [(Int, Int, Int, Int)] = []
        for (c, side) in [(320, latent), (640, latent / 2), (1280, latent / 4), (1280, latent / 8)] {
            shapes.append((2, c, c, side))
        }
        shapes += [(2, 640, 320, latent), (2, 1280, 640, latent / 2), (2, 2560, 1280, latent / 4)]
        for (c, o, side) in [
            (512, 512, latent), (512, 512, 2 * latent), (512, 512, 4 * latent), (512, 256, 8 * latent),
            (256, 256, 8 * latent), (256, 128, 8 * latent), (128, 128, 8 * latent),
        ] {
            shapes.append((1, c, o, side))
        }
        var rows: [[String: Any]] = []
        for (n, c, o, side) in shapes where side >= 1 {
            let x = Tensor(repeating: 0.5, shape: [n, c, side, side])
            let w = Tensor(repeating: 0.01, shape: [o, c, 3, 3])
            func time(_ body: () throws -> Tensor) throws -> Double {
                _ = try body()
                var best = Double.infinity
                for _ in 0..<runs {
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = try body()
                    best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                return best
            }
            let direct = try time { try conv2d(x, weight: w, padding: (1, 1)) }
            let f2 = try time { try conv2dWinograd3x3(x, weight: w) }
            let f4 = try time { try conv2dWinograd4x4(x, weight: w) }
            let chosen = try time { try convolution(x, weight: w, padding: (1, 1)) }
            let flop = Double(2 * n * o * c * 9 * side * side) / 1e9
            rows.append([
                "batch": n, "in": c, "out": o, "side": side, "direct_s": direct, "f2_s": f2, "f4_s": f4,
                "chosen_s": chosen, "gflop": flop,
            ])
            if !json {
                print(
                    String(
                        format: "%d×%4d→%4d @%4d: direct %.4f  F2 %.4f  F4 %.4f  chosen %.4f s (%.0f GFLOP/s)", n, c,
                        o, side, direct, f2, f4, chosen, flop / chosen))
            }
        }
        if json { try printJSON(["component": "conv", "size": size, "shapes": rows]) }
    }
}
