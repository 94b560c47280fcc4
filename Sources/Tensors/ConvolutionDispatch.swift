/// The convolution the networks call: picks the fastest method for the shape.
///
/// 3×3 stride-1 kernels go through Winograd F(4×4, 3×3) when there are at least `winogradMinTiles` 4×4
/// output tiles and both channel counts are at least `winogradF4MinChannels`, else F(2×2, 3×3) when there are
/// that many 2×2 tiles, else (and for every other kernel) through `conv2d` (im2col + GEMM). With fewer tiles the
/// transforms' GEMMs are too narrow to beat one wide GEMM (`varaudit bench --component conv` times each method
/// on every SD v1 shape). F(4×4) rounds about 7× more than F(2×2) (docs/algorithms.md); it is kept to the wide
/// layers, where its GEMMs are most of the time and its gain is largest, and narrow networks keep the ~1e-6
/// agreement with direct convolution. Same contract as `conv2d`.
public func convolution(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)
) throws -> Tensor {
    if x.rank == 4, weight.rank == 4, weight.shape[2] == 3, weight.shape[3] == 3, stride == (1, 1) {
        let (hout, wout) = (x.shape[2] + 2 * padding.0 - 2, x.shape[3] + 2 * padding.1 - 2)
        func tiles(_ side: Int) -> Int { x.shape[0] * ((hout + side - 1) / side) * ((wout + side - 1) / side) }
        if hout > 0, wout > 0 {
            if tiles(4) >= winogradMinTiles, min(x.shape[1], weight.shape[0]) >= winogradF4MinChannels {
                return try conv2dWinograd4x4(x, weight: weight, bias: bias, padding: padding)
            }
            if tiles(2) >= winogradMinTiles {
                return try conv2dWinograd3x3(x, weight: weight, bias: bias, padding: padding)
            }
        }
    }
    return try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
}

/// Output tiles (of the method's size) from which a Winograd method is used.
let winogradMinTiles = 64
/// Input and output channels from which F(4×4, 3×3) is used (all of SD v1's UNet and VAE 3×3 layers).
let winogradF4MinChannels = 128
