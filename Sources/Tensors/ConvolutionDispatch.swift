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
    try convolution(x, .plain(weight), bias: bias, stride: stride, padding: padding)
}

/// The same over a weight packed for the left side of our GEMM (`PackedSide.left`), as `Conv2d` layers hold it.
public func convolution(
    _ x: Tensor, packed weight: PackedMatrix, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
    padding: (Int, Int) = (0, 0)
) throws -> Tensor {
    guard weight.side == .left, weight.shape.count == 4 else {
        throw TensorError("convolution", "weight \(weight.shape) is not a convolution weight packed for the left side")
    }
    return try convolution(x, .packed(weight), bias: bias, stride: stride, padding: padding)
}

func convolution(
    _ x: Tensor, _ weight: LayerWeight, bias: Tensor?, stride: (Int, Int), padding: (Int, Int)
) throws -> Tensor {
    let weightRank = weight.shape.count
    if x.rank == 4, weightRank == 4, weight.shape[2] == 3, weight.shape[3] == 3, stride == (1, 1) {
        let (hout, wout) = (x.shape[2] + 2 * padding.0 - 2, x.shape[3] + 2 * padding.1 - 2)
        func tiles(_ side: Int) -> Int { x.shape[0] * ((hout + side - 1) / side) * ((wout + side - 1) / side) }
        if hout > 0, wout > 0 {
            if tiles(4) >= winogradMinTiles, min(x.shape[1], weight.shape[0]) >= winogradF4MinChannels {
                return try conv2dWinograd4x4(x, weight, bias: bias, padding: padding)
            }
            if tiles(2) >= winogradMinTiles {
                return try conv2dWinograd3x3(x, weight, bias: bias, padding: padding)
            }
        }
    }
    return try conv2d(x, weight, bias: bias, stride: stride, padding: padding)
}

/// Output tiles (of the method's size) from which a Winograd method is used.
let winogradMinTiles = 64
/// Input and output channels from which F(4×4, 3×3) is used (all of SD v1's UNet and VAE 3×3 layers).
let winogradF4MinChannels = 128
