import CKernels
import Dispatch

/// GEMMs whose weight matrix is packed once, when the network is loaded, into the panels our kernel reads
/// (`CKernels/cgemm.h`). BLAS repacks both operands on every call; for a weight that is 10–15% of a CLIP
/// encode or a 256 px UNet call, whose deep layers multiply big matrices by few pixels.

/// Which side of the product a packed weight multiplies the data from.
public enum PackedSide: Sendable, Equatable {
    /// `[O, K]` times data `[K, N]` (a convolution's weight over im2col columns or Winograd tiles): panels of
    /// `CK_GEMM_MR` output channels.
    case left
    /// Data `[M, K]` times the transpose of `[N, K]` (a linear layer's weight): panels of `CK_GEMM_NR` outputs.
    case right

    /// Rows per panel.
    var width: Int { Int(self == .left ? CK_GEMM_MR : CK_GEMM_NR) }
}

/// Memory of a packed matrix (64-byte aligned), freed with the last matrix that uses it; or borrowed for one
/// call (a float16 weight widened into a reused buffer), kept valid by its owner.
public final class PackedStorage: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let count: Int
    private let owner: AnyObject?

    init(count: Int) {
        self.count = count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: max(count, 1))
        owner = nil
    }

    init(borrowing base: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.base = base
        self.count = count
        self.owner = owner
    }

    deinit { if owner == nil { UnsafeMutableRawPointer(base).deallocate() } }
}

/// A weight matrix (its first axis the outputs, the others flattened into the depth) packed for one side of the
/// product. Replaces the float32 weight it was made from: a weight borrowed from a memory-mapped checkpoint has
/// its pages released after packing, so the packed copy does not add to resident memory.
public struct PackedMatrix: Sendable {
    /// The weight's shape (e.g. `[O, C, 3, 3]`); rows are `shape[0]`, the depth the product of the rest.
    public let shape: [Int]
    /// The side it multiplies the data from.
    public let side: PackedSide
    let storage: PackedStorage

    /// Number of rows (outputs).
    public var rows: Int { shape[0] }
    /// Elements per row.
    public var depth: Int { shape.dropFirst().reduce(1, *) }
    /// Number of weight elements (without the panels' padding).
    public var count: Int { shape.reduce(1, *) }
    var base: UnsafePointer<Float> { UnsafePointer(storage.base) }

    /// Packs `weight` (rank ≥ 2) for `side`.
    public init(packing weight: Tensor, side: PackedSide) {
        precondition(weight.rank >= 2, "PackedMatrix: weight \(weight.shape) needs rank ≥ 2")
        shape = weight.shape
        self.side = side
        let (rows, depth, width) = (weight.shape[0], weight.count / max(weight.shape[0], 1), side.width)
        storage = PackedStorage(count: Int(ck_gemm_packed_count(rows, depth, width)))
        let dst = SendablePointer(storage.base)
        weight.withUnsafeBufferPointer { src in
            let s = UncheckedSendable(src.baseAddress!)
            parallelChunks((rows + width - 1) / width, costPerItem: depth * width) { range in
                ck_gemm_pack_rows(s.value, depth, rows, depth, width, range.lowerBound, range.upperBound, dst.base)
            }
        }
        weight.storage.releaseResidentPages()
    }

    /// A matrix of `shape` packed for `side` as it is made: `fill` is called for consecutive ranges of rows, in
    /// order, and writes them row-major into the buffer it is given, so no plain copy of the whole matrix exists
    /// (made-up benchmark weights).
    public init(
        shape: [Int], side: PackedSide, fillingRows fill: (Range<Int>, UnsafeMutableBufferPointer<Float>) -> Void
    ) {
        precondition(shape.count >= 2, "PackedMatrix: shape \(shape) needs rank ≥ 2")
        self.shape = shape
        self.side = side
        let (rows, depth, width) = (shape[0], shape.dropFirst().reduce(1, *), side.width)
        storage = PackedStorage(count: Int(ck_gemm_packed_count(rows, depth, width)))
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(width * depth, 1))
        defer { buffer.deallocate() }
        for panel in 0..<((rows + width - 1) / width) {
            let range = (panel * width)..<min(rows, (panel + 1) * width)
            fill(range, UnsafeMutableBufferPointer(rebasing: buffer[..<(range.count * depth)]))
            ck_gemm_pack_rows(
                buffer.baseAddress!, depth, range.count, depth, width, 0, 1, storage.base + panel * width * depth)
        }
    }

    init(shape: [Int], side: PackedSide, storage: PackedStorage) {
        self.shape = shape
        self.side = side
        self.storage = storage
    }

    /// The weight as a plain float32 tensor (a copy).
    public func unpacked() -> Tensor {
        var out = Tensor(uninitialized: shape)
        out.withUnsafeMutableBufferPointer { dst in
            ck_gemm_unpack_rows(base, rows, depth, side.width, dst.baseAddress!, depth)
        }
        return out
    }

    /// The same packed weight under another shape with the same rows and depth (e.g. `[O, C, 1, 1]` as `[O, C]`).
    public func reshaped(_ newShape: [Int]) throws -> PackedMatrix {
        guard newShape.count >= 2, newShape[0] == rows, newShape.dropFirst().reduce(1, *) == depth else {
            throw TensorError("reshape", "a packed \(shape) weight cannot be viewed as \(newShape)")
        }
        return PackedMatrix(shape: newShape, side: side, storage: storage)
    }
}

/// The kernel a packed GEMM runs: the fastest the CPU has, or a slower one (tests check every path the machine has).
public enum GEMMPath: Int32, Sendable, CaseIterable {
    case portable = 1
    case avx2 = 2
    case avx512 = 3

    /// The fastest path on this CPU.
    public static var best: GEMMPath { GEMMPath(rawValue: ck_gemm_best_path()) ?? .portable }

    /// The path the kernels run when asked for this one: itself, or the best when this CPU lacks it.
    var resolved: GEMMPath { GEMMPath(rawValue: ck_gemm_resolve_path(rawValue)) ?? .portable }

    /// The paths this CPU can run, slowest first.
    public static var available: [GEMMPath] { allCases.filter { $0.rawValue <= best.rawValue } }
}

/// One operand of a packed GEMM: a row-major matrix with its leading dimension, or a packed weight's panels.
enum GEMMOperand {
    case plain(UnsafePointer<Float>, ld: Int)
    case packed(PackedMatrix)
    /// Panels made for this call in the side's packed layout (Winograd's transformed filters).
    case panels(UnsafePointer<Float>)
}

/// `C[m×n] = addend + rowBias[i] + columnBias[j] + A[m×k] · B[k×n]`, then, for a nonzero `gate`,
/// `C·sigmoid(gate·C)` (SiLU at 1, quick GELU at 1.702) as each tile is stored; split over the kernel threads.
/// A packed `a` must be a `.left` matrix of `m` rows and depth `k`; a packed `b` a `.right` one of `n` rows and
/// depth `k`. The addend, when given, is an `m×n` matrix with leading dimension `ldc`: `c` itself to accumulate,
/// or another (a residual, read as each tile is stored instead of copied into `c` first). Work is split along the
/// rows or the columns, whichever leaves the busiest thread the fewest 8×32 register tiles.
func packedGEMM(
    m: Int, n: Int, k: Int, a: GEMMOperand, b: GEMMOperand, c: UnsafeMutablePointer<Float>, ldc: Int,
    addend: UnsafePointer<Float>? = nil, rowBias: UnsafePointer<Float>? = nil, columnBias: UnsafePointer<Float>? = nil,
    gate: Float = 0, path: GEMMPath = .best, threads: Int = kernelThreadCount
) {
    guard m > 0, n > 0 else { return }
    let (pa, lda, aPacked) = operand(a, side: .left, rows: m, depth: k)
    let (pb, ldb, bPacked) = operand(b, side: .right, rows: n, depth: k)
    let (mr, nr) = (Int(CK_GEMM_MR), Int(CK_GEMM_NR))
    let rowPanels = (m + mr - 1) / mr
    let columnPanels = (n + nr - 1) / nr
    // The split whose busiest thread has the fewest register tiles; on a tie, rows when B is the packed weight
    // (each thread then packs only its own rows of A, if any) and columns otherwise.
    func busiest(_ panels: Int, _ other: Int) -> Int { (panels + threads - 1) / threads * other }
    let (byRows, byColumns) = (busiest(rowPanels, columnPanels), busiest(columnPanels, rowPanels))
    let splitRows = byRows != byColumns ? byRows < byColumns : (bPacked != 0 || aPacked == 0)
    let panels = splitRows ? rowPanels : columnPanels
    // A packed weight times an input the kernel reads in place (AVX-512) or a packed one: no part packs anything,
    // so small parts cost next to nothing (the operand not split is read again per part, from cache) and the pool
    // hands them out as threads finish, so a thread slowed by another process does not hold up the others: the
    // last part is what the other thread may wait for. Sixteen per thread (one 32-column panel each for a
    // 1,024-wide CLIP layer, four for its 4,096-wide fc1) cut the time the threads spent waiting in a CLIP encode
    // from 4.5% to 2.8% of it (four per thread before). Otherwise each part repacks the operand it does not
    // split, and one part per thread is cheapest.
    let noPacking = bPacked != 0 && (aPacked != 0 || path.resolved == .avx512)
    let parts = m * n * k < 1 << 20 ? 1 : max(1, min(threads * (noPacking ? 16 : 1), panels))
    let (sa, sb, sc) = (UncheckedSendable(pa), UncheckedSendable(pb), SendablePointer(c))
    let (sr, scb, sd) = (UncheckedSendable(rowBias), UncheckedSendable(columnBias), UncheckedSendable(addend))
    let run: @Sendable (Int) -> Void = { part in
        let lo = panels * part / parts
        let hi = panels * (part + 1) / parts
        guard lo < hi else { return }
        let (m0, m1) = splitRows ? (lo * mr, min(m, hi * mr)) : (0, m)
        let (n0, n1) = splitRows ? (0, n) : (lo * nr, min(n, hi * nr))
        ScratchPool.shared.with(Int(ck_gemm_workspace_count())) { workspace in
            ck_sgemm(
                path.rawValue, m, n, k, sa.value, lda, aPacked, sb.value, ldb, bPacked, sc.base, ldc,
                sd.value, sr.value, scb.value, gate, m0, m1, n0, n1, workspace)
        }
    }
    parallelFor(parts, threads: threads, run)
}

private func operand(_ x: GEMMOperand, side: PackedSide, rows: Int, depth: Int) -> (UnsafePointer<Float>, Int, Int32) {
    switch x {
    case .plain(let p, let ld): return (p, ld, 0)
    case .packed(let w):
        precondition(
            w.side == side && w.rows == rows && w.depth == depth,
            "packed GEMM: a \(w.side) weight \(w.shape) used as the \(side) operand of depth \(depth)")
        return (w.base, 0, 1)
    case .panels(let p): return (p, 0, 1)
    }
}

/// A layer's weight as a kernel receives it: a plain tensor (BLAS), or packed for our GEMM — for the left side
/// when it is a convolution's `[O, C, kh, kw]`, the right side when it is a linear layer's `[out, in]`.
enum LayerWeight {
    case plain(Tensor)
    case packed(PackedMatrix)

    var shape: [Int] {
        switch self {
        case .plain(let t): t.shape
        case .packed(let p): p.shape
        }
    }
}

/// Fully connected layer over a weight packed for the right side: `x · weightᵀ + bias`, as `linear`.
public func linear(
    _ x: Tensor, packed weight: PackedMatrix, bias: Tensor? = nil, gate: Float? = nil, residual: Tensor? = nil
) throws -> Tensor {
    guard weight.side == .right else {
        throw TensorError("linear", "weight \(weight.shape) is packed for the left side, not as a linear weight")
    }
    return try linear(x, .packed(weight), bias: bias, gate: gate, residual: residual)
}

/// `linear` over a plain weight (BLAS, bias copied into the output first) or a packed one (our GEMM, bias added
/// in its store). With `residual` (the output's shape) the result is `residual + x · weightᵀ + bias`; with
/// `gate`, that result `y` becomes `y·sigmoid(gate·y)` (SiLU at 1, CLIP's quick GELU at 1.702), the same bits
/// as `silu`/`quickGELU` applied after.
func linear(_ x: Tensor, _ weight: LayerWeight, bias: Tensor?, gate: Float? = nil, residual: Tensor? = nil) throws
    -> Tensor
{
    let shape = weight.shape
    guard x.rank >= 1, shape.count == 2, let inFeatures = x.shape.last, shape[1] == inFeatures else {
        throw TensorError("linear", "input \(x.shape) does not match weight \(shape) ([out, in])")
    }
    let outFeatures = shape[0]
    if let bias, bias.shape != [outFeatures] {
        throw TensorError("linear", "bias \(bias.shape) does not match weight \(shape)")
    }
    let outShape = Array(x.shape.dropLast()) + [outFeatures]
    if let residual, residual.shape != outShape {
        throw TensorError("linear", "residual \(residual.shape) does not match the output \(outShape)")
    }
    let rows = x.count / max(inFeatures, 1)
    FLOPCounter.add(2 * rows * outFeatures * inFeatures)
    // Over a plain weight the output starts as the residual (a copy unless this is its last reference) and BLAS
    // accumulates onto it; our GEMM reads the residual as it stores each tile, so no copy is made.
    var out: Tensor
    if case .plain = weight, let residual { out = residual } else { out = Tensor(uninitialized: outShape) }
    out.withUnsafeMutableBufferPointer { po in
        guard let po = po.baseAddress else { return }
        x.withUnsafeBufferPointer { px in
            switch weight {
            case .plain(let w):
                if let bias {
                    bias.withUnsafeBufferPointer { pb in
                        for r in 0..<rows {
                            let row = po + r * outFeatures
                            if residual == nil {
                                row.update(from: pb.baseAddress!, count: outFeatures)
                            } else {
                                for j in 0..<outFeatures { row[j] += pb[j] }
                            }
                        }
                    }
                }
                w.withUnsafeBufferPointer { pw in
                    splitSgemm(
                        transB: true, m: rows, n: outFeatures, k: inFeatures,
                        a: px.baseAddress!, lda: inFeatures, b: pw.baseAddress!, ldb: inFeatures,
                        beta: bias == nil && residual == nil ? 0 : 1, c: po, ldc: outFeatures)
                }
                if let gate { sigmoidGateInParallel(po, count: rows * outFeatures, scale: gate) }
            case .packed(let w):
                withOptionalPointer(bias) { pb in
                    withOptionalPointer(residual) { pr in
                        packedGEMM(
                            m: rows, n: outFeatures, k: inFeatures, a: .plain(px.baseAddress!, ld: inFeatures),
                            b: .packed(w), c: po, ldc: outFeatures, addend: pr, columnBias: pb, gate: gate ?? 0)
                    }
                }
            }
        }
    }
    return out
}

/// `body` with the elements of `t`, or with `nil`.
func withOptionalPointer<R>(_ t: Tensor?, _ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
    guard let t else { return try body(nil) }
    return try t.withUnsafeBufferPointer { try body($0.baseAddress) }
}

/// Owners of borrowed tensor memory that can drop its resident pages (a memory-mapped file).
public protocol ResidentPagesReleasing: AnyObject {
    /// Drops this process's resident copies of the whole pages within `length` bytes at `start`; a later read
    /// brings the same bytes back.
    func releaseResidentPages(from start: UnsafeRawPointer, length: Int)
}

extension TensorStorage {
    /// Releases the resident pages of a storage borrowed from a memory-mapped file (no effect otherwise): for a
    /// weight that was copied into another form and is not read again.
    func releaseResidentPages() {
        (owner as? ResidentPagesReleasing)?.releaseResidentPages(from: base, length: count * 4)
    }
}
