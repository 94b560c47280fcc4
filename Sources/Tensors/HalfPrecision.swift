import CKernels
import Foundation

/// How a network keeps its large weight matrices in memory.
public enum WeightPrecision: String, Sendable, CaseIterable {
    /// Float32, as stored (or widened once from a float16 / bfloat16 checkpoint). The default.
    case float32 = "f32"
    /// Float16 (2 bytes per element), widened to float32 per layer call into a reused buffer.
    case float16 = "f16"
}

/// IEEE binary16 ⇄ binary32 conversion of arrays (the `CKernels` C target): F16C when the CPU has it,
/// checked at run time, else a portable loop; both give the same bits.
///
/// Widening is exact. Narrowing rounds to nearest, ties to even, as torch's `.half()`: from 65520 up
/// (in magnitude) to infinity, at or below 2^-25 to zero. NaNs stay NaNs with their sign (quieted).
public enum Float16Conversion {
    /// Which implementation converts.
    public enum Path: Sendable {
        /// F16C where available, else portable (what the networks use).
        case fastest
        /// The portable scalar loop, whatever the CPU (for tests).
        case portable
    }

    /// Whether `.fastest` uses F16C on this CPU.
    public static var usesF16C: Bool { cf16_uses_f16c() != 0 }

    /// Widens `source` (float16 bit patterns) into `destination` (same count), on all cores for large arrays.
    public static func widen(
        _ source: UnsafeBufferPointer<UInt16>, into destination: UnsafeMutableBufferPointer<Float>,
        path: Path = .fastest
    ) {
        precondition(destination.count >= source.count, "Float16Conversion.widen: destination too small")
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let (s, d) = (UncheckedSendable(src), SendablePointer(dst))
        parallelChunks(source.count, costPerItem: 1) { r in
            let (from, to, n) = (s.value + r.lowerBound, d.base + r.lowerBound, r.count)
            switch path {
            case .fastest: cf16_widen(from, to, n)
            case .portable: cf16_widen_scalar(from, to, n)
            }
        }
    }

    /// Narrows `source` into float16 bit patterns in `destination` (same count), on all cores for large arrays.
    public static func narrow(
        _ source: UnsafeBufferPointer<Float>, into destination: UnsafeMutableBufferPointer<UInt16>,
        path: Path = .fastest
    ) {
        precondition(destination.count >= source.count, "Float16Conversion.narrow: destination too small")
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
        let (s, d) = (UncheckedSendable(src), SendablePointer(dst))
        parallelChunks(source.count, costPerItem: 1) { r in
            let (from, to, n) = (s.value + r.lowerBound, d.base + r.lowerBound, r.count)
            switch path {
            case .fastest: cf16_narrow(from, to, n)
            case .portable: cf16_narrow_scalar(from, to, n)
            }
        }
    }

    /// `widen` of an array.
    public static func widen(_ bits: [UInt16], path: Path = .fastest) -> [Float] {
        var out = [Float](repeating: 0, count: bits.count)
        bits.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { widen(src, into: $0, path: path) }
        }
        return out
    }

    /// `narrow` of an array.
    public static func narrow(_ values: [Float], path: Path = .fastest) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { narrow(src, into: $0, path: path) }
        }
        return out
    }
}

/// Backing memory of a float16 tensor (bit patterns): owned, or borrowed from a longer-lived region such as a
/// memory-mapped checkpoint. Never written once filled.
public final class HalfStorage: @unchecked Sendable {
    /// Start of the elements.
    public let base: UnsafePointer<UInt16>
    /// Number of elements.
    public let count: Int
    /// Keeps a borrowed region alive; `nil` when the storage owns (and frees) its memory.
    private let owner: AnyObject?

    /// Allocates `count` elements and lets `fill` write them.
    public init(count: Int, fill: (UnsafeMutableBufferPointer<UInt16>) throws -> Void) rethrows {
        let memory = UnsafeMutablePointer<UInt16>.allocate(capacity: max(count, 1))
        memory.initialize(repeating: 0, count: max(count, 1))
        do {
            try fill(UnsafeMutableBufferPointer(start: memory, count: count))
        } catch {
            memory.deallocate()
            throw error
        }
        base = UnsafePointer(memory)
        self.count = count
        owner = nil
    }

    /// Borrows `count` elements at `base` (2-byte aligned), kept valid by `owner` for as long as this storage lives.
    public init(borrowing base: UnsafePointer<UInt16>, count: Int, owner: AnyObject) {
        self.base = base
        self.count = count
        self.owner = owner
    }

    /// Whether the elements live in someone else's memory (e.g. a memory-mapped file) rather than a copy.
    public var isBorrowed: Bool { owner != nil }

    deinit {
        if owner == nil { UnsafeMutablePointer(mutating: base).deallocate() }
    }
}

/// A contiguous, row-major float16 tensor: weights kept at 2 bytes per element.
public struct HalfTensor: @unchecked Sendable {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Backing elements (exactly `shape.product` of them are used).
    public let storage: HalfStorage

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// A tensor over existing storage.
    public init(shape: [Int], storage: HalfStorage) {
        precondition(storage.count >= shape.reduce(1, *), "HalfTensor: storage smaller than shape \(shape)")
        self.shape = shape
        self.storage = storage
    }

    /// `tensor` rounded to float16 (to nearest, ties to even, as torch's `.half()`).
    public init(narrowing tensor: Tensor) {
        shape = tensor.shape
        storage = tensor.withUnsafeBufferPointer { src in
            HalfStorage(count: src.count) { Float16Conversion.narrow(src, into: $0) }
        }
    }

    /// The elements as bit patterns (a copy).
    public var bitPatterns: [UInt16] { Array(UnsafeBufferPointer(start: storage.base, count: count)) }

    /// The elements widened to float32, in new owned storage.
    public func widened() -> Tensor {
        var out = Tensor(uninitialized: shape)
        out.withUnsafeMutableBufferPointer {
            Float16Conversion.widen(UnsafeBufferPointer(start: storage.base, count: count), into: $0)
        }
        return out
    }

    /// The same elements viewed with another shape (no copy).
    public func reshaped(_ newShape: [Int]) throws -> HalfTensor {
        guard newShape.allSatisfy({ $0 >= 0 }), newShape.reduce(1, *) == count else {
            throw TensorError("reshape", "float16 shape \(shape) (\(count) elements) cannot become \(newShape)")
        }
        return HalfTensor(shape: newShape, storage: storage)
    }
}

/// A layer's weight: a float32 `Tensor`, or float16 storage widened to float32 around each kernel call.
///
/// `withFloat32` hands the kernel a float32 view: the tensor itself, or the float16 values widened into a
/// buffer reused across calls (one per concurrent caller, grown to the largest weight it held), so a float16
/// network never keeps a float32 copy of its weights.
public enum WeightTensor: Sendable {
    case float32(Tensor)
    case float16(HalfTensor)
    /// A float32 weight packed for our GEMM kernel (`PackedMatrix`); the plain tensor is gone.
    case packed(PackedMatrix)

    /// `tensor` in `precision` (narrowed for float16).
    public init(_ tensor: Tensor, precision: WeightPrecision) {
        switch precision {
        case .float32: self = .float32(tensor)
        case .float16: self = .float16(HalfTensor(narrowing: tensor))
        }
    }

    /// Dimensions, outermost first.
    public var shape: [Int] {
        switch self {
        case .float32(let t): t.shape
        case .float16(let h): h.shape
        case .packed(let p): p.shape
        }
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// How the elements are held.
    public var precision: WeightPrecision {
        switch self {
        case .float32, .packed: .float32
        case .float16: .float16
        }
    }

    /// The same weight viewed with another shape (no copy).
    public func reshaped(_ newShape: [Int]) throws -> WeightTensor {
        switch self {
        case .float32(let t): .float32(try t.reshaped(newShape))
        case .float16(let h): .float16(try h.reshaped(newShape))
        case .packed(let p): .packed(try p.reshaped(newShape))
        }
    }

    /// Runs `body` on the weight packed for `side` of our GEMM: the packed float32 matrix itself, or float16
    /// values widened straight into packed panels in a reused buffer valid only during `body`; `nil` for a plain
    /// float32 weight (which goes through BLAS).
    public func withPacked<R>(for side: PackedSide, _ body: (PackedMatrix) throws -> R) rethrows -> R? {
        switch self {
        case .packed(let p) where p.side == side: return try body(p)
        case .float16(let h) where h.shape.count >= 2: return try WideningPool.shared.withPacked(h, side: side, body)
        default: return nil
        }
    }

    /// The weight as a float32 tensor that outlives the call: the tensor itself, or a widened copy.
    public func widened() -> Tensor {
        switch self {
        case .float32(let t): t
        case .float16(let h): h.widened()
        case .packed(let p): p.unpacked()
        }
    }

    /// Runs `body` on the weight as float32: the tensor itself (no copy), or the float16 values widened into a
    /// reused buffer that is valid only during `body` (a tensor `body` keeps past its return is not reused).
    public func withFloat32<R>(_ body: (Tensor) throws -> R) rethrows -> R {
        switch self {
        case .float32(let t): return try body(t)
        case .float16(let h): return try WideningPool.shared.withWidened(h, body)
        case .packed(let p): return try body(p.unpacked())
        }
    }

    /// The weight packed for `side` of our GEMM (a float32 matrix of rank ≥ 2; float16 weights stay as they are,
    /// memory-mapped where the file is float16, and `withPacked` widens them into panels per call). A weight
    /// packed for the other side is repacked.
    public func packed(for side: PackedSide) -> WeightTensor {
        switch self {
        case .float32(let t): t.rank >= 2 ? .packed(PackedMatrix(packing: t, side: side)) : self
        case .float16: self
        case .packed(let p): p.side == side ? self : .packed(PackedMatrix(packing: p.unpacked(), side: side))
        }
    }
}

/// The float32 buffers float16 weights are widened into: taken for one kernel call and given back.
final class WideningPool: @unchecked Sendable {
    /// One buffer; its memory is replaced (never resized in place) only while no tensor borrows it.
    final class Buffer {
        private(set) var base: UnsafeMutablePointer<Float>
        private(set) var capacity: Int

        init() {
            base = .allocate(capacity: 1)
            capacity = 0
        }

        func reserve(_ count: Int) {
            guard count > capacity else { return }
            base.deallocate()
            base = .allocate(capacity: count)
            capacity = count
        }

        deinit { base.deallocate() }
    }

    static let shared = WideningPool()

    private let lock = NSLock()
    private var free: [Buffer] = []

    /// The largest free buffer (grown to `count` if smaller), or a new one.
    private func take(_ count: Int) -> Buffer {
        lock.lock()
        let largest = free.indices.max { free[$0].capacity < free[$1].capacity }
        let buffer = largest.map { free.remove(at: $0) } ?? Buffer()
        lock.unlock()
        buffer.reserve(count)
        return buffer
    }

    private func give(_ buffer: Buffer) {
        lock.lock()
        free.append(buffer)
        lock.unlock()
    }

    func withWidened<R>(_ weight: HalfTensor, _ body: (Tensor) throws -> R) rethrows -> R {
        try lend(weight.count) { try Self.run(body, weight, in: $0) }
    }

    /// Runs `body` on `weight` widened straight into the packed layout of `side` (our GEMM's panels), in a reused
    /// buffer valid only during `body`.
    func withPacked<R>(_ weight: HalfTensor, side: PackedSide, _ body: (PackedMatrix) throws -> R) rethrows -> R {
        precondition(weight.shape.count >= 2, "packed float16 weight \(weight.shape) needs rank ≥ 2")
        let count = Int(ck_gemm_packed_count(weight.shape[0], weight.count / max(weight.shape[0], 1), side.width))
        return try lend(count) { try Self.runPacked(body, weight, side: side, count: count, in: $0) }
    }

    /// A buffer of at least `count` floats for `use`, taken back afterwards unless something `use` returned still
    /// borrows it (then it is left to that, not reused).
    private func lend<R>(_ count: Int, _ use: (Buffer) throws -> R) rethrows -> R {
        var buffer: Buffer? = take(count)
        defer {
            if isKnownUniquelyReferenced(&buffer), let buffer { give(buffer) }
        }
        return try use(buffer.unsafelyUnwrapped)
    }

    /// Packs into `buffer` and calls `body`; the borrowing matrix is gone when this returns (unless kept by `body`).
    @inline(never)
    private static func runPacked<R>(
        _ body: (PackedMatrix) throws -> R, _ weight: HalfTensor, side: PackedSide, count: Int, in buffer: Buffer
    ) rethrows -> R {
        let (rows, depth, width) = (weight.shape[0], weight.count / max(weight.shape[0], 1), side.width)
        let (src, dst) = (UncheckedSendable(weight.storage.base), SendablePointer(buffer.base))
        parallelChunks((rows + width - 1) / width, costPerItem: depth * width) { range in
            ck_gemm_pack_rows_f16(src.value, depth, rows, depth, width, range.lowerBound, range.upperBound, dst.base)
        }
        let storage = PackedStorage(borrowing: buffer.base, count: count, owner: buffer)
        return try body(PackedMatrix(shape: weight.shape, side: side, storage: storage))
    }

    /// Widens into `buffer` and calls `body`; the borrowing tensor is gone when this returns (unless kept by `body`).
    @inline(never)
    private static func run<R>(_ body: (Tensor) throws -> R, _ weight: HalfTensor, in buffer: Buffer) rethrows -> R {
        let n = weight.count
        Float16Conversion.widen(
            UnsafeBufferPointer(start: weight.storage.base, count: n),
            into: UnsafeMutableBufferPointer(start: buffer.base, count: n))
        let storage = TensorStorage(borrowing: buffer.base, count: n, owner: buffer)
        return try body(Tensor(shape: weight.shape, storage: storage))
    }
}
