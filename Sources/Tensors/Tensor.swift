import CKernels

/// Errors raised by tensor kernels: which operation failed and on which shapes.
public struct TensorError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The kernel that refused its input, e.g. `"conv2d"`.
    public let op: String
    /// What was wrong, with the shapes involved.
    public let message: String

    public init(_ op: String, _ message: String) {
        self.op = op
        self.message = message
    }

    public var description: String { "\(op): \(message)" }
}

/// Set once, before the first tensor is allocated: freed tensor memory stays in the process for the next
/// tensor instead of coming back page by page (`ck_keep_freed_memory`).
let freedMemoryKept = ck_keep_freed_memory() == 1

/// Backing memory of a tensor: owned, or borrowed from a longer-lived region (e.g. a memory-mapped file).
public final class TensorStorage: @unchecked Sendable {
    /// Start of the elements.
    public let base: UnsafeMutablePointer<Float>
    /// Number of `Float` elements.
    public let count: Int
    /// Keeps a borrowed region alive; `nil` when the storage owns (and frees) its memory.
    let owner: AnyObject?

    /// Allocates `count` zero-initialized elements.
    public init(zeros count: Int) {
        _ = freedMemoryKept
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
        self.count = count
        owner = nil
    }

    /// Allocates `count` uninitialized elements (callers fill them before reading).
    init(uninitialized count: Int) {
        _ = freedMemoryKept
        base = .allocate(capacity: max(count, 1))
        self.count = count
        owner = nil
    }

    /// Borrows `count` elements at `base`, kept valid by `owner` for as long as this storage lives.
    /// Borrowed storage is never written: a mutation copies first.
    public init(borrowing base: UnsafePointer<Float>, count: Int, owner: AnyObject) {
        self.base = UnsafeMutablePointer(mutating: base)
        self.count = count
        self.owner = owner
    }

    /// Whether the memory belongs to this storage (and so may be written in place).
    var isOwned: Bool { owner == nil }

    deinit {
        if owner == nil { base.deallocate() }
    }
}

/// A contiguous, row-major Float32 tensor (NCHW for images and feature maps).
///
/// Value semantics: copies share storage until one of them is mutated.
public struct Tensor: @unchecked Sendable {
    /// Dimensions, outermost first.
    public private(set) var shape: [Int]
    /// Backing elements (exactly `shape.product` of them are used).
    public private(set) var storage: TensorStorage

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(zeros: shape.reduce(1, *))
    }

    /// A tensor whose elements the caller will write before reading (kernels' outputs).
    init(uninitialized shape: [Int]) {
        self.shape = shape
        storage = TensorStorage(uninitialized: shape.reduce(1, *))
    }

    /// A tensor over existing storage.
    public init(shape: [Int], storage: TensorStorage) {
        precondition(storage.count >= shape.reduce(1, *), "Tensor: storage smaller than shape \(shape)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor holding a copy of `values`; `values.count` must equal the product of `shape`.
    public init(shape: [Int], values: [Float]) throws {
        let n = shape.reduce(1, *)
        guard n == values.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError("init", "shape \(shape) holds \(n) elements but \(values.count) values were given")
        }
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { src in
            if n > 0 { storage.base.update(from: src.baseAddress!, count: n) }
        }
    }

    /// A tensor filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        storage.base.initialize(repeating: value, count: max(count, 1))
    }

    /// The elements as an array (a copy).
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// The rows of a matrix `[n, d]` as arrays (the outer axis split off for any other rank).
    public var rows: [[Float]] {
        let n = shape.first ?? 0
        let d = n == 0 ? 0 : count / n
        let v = scalars
        return (0..<n).map { Array(v[($0 * d)..<(($0 + 1) * d)]) }
    }

    /// Reads the elements.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: count))
    }

    /// Writes the elements, copying first if the storage is shared or borrowed.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) || !storage.isOwned {
            let copy = TensorStorage(uninitialized: count)
            copy.base.update(from: storage.base, count: count)
            storage = copy
        }
        return try body(UnsafeMutableBufferPointer(start: storage.base, count: count))
    }

    /// The element at a multi-dimensional index (for tests and small lookups, not for loops).
    public subscript(index: Int...) -> Float {
        precondition(index.count == rank, "Tensor subscript: \(index.count) indices for rank \(rank)")
        var flat = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "Tensor subscript: index \(index) out of \(shape)")
            flat = flat * d + i
        }
        return storage.base[flat]
    }

    /// The same elements viewed with another shape (no copy). `-1` in one position is inferred.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var dims = newShape
        let unknown = dims.indices.filter { dims[$0] == -1 }
        guard unknown.count <= 1, dims.allSatisfy({ $0 >= -1 }) else {
            throw TensorError("reshape", "invalid target shape \(newShape)")
        }
        if let u = unknown.first {
            let known = dims.enumerated().filter { $0.offset != u }.reduce(1) { $0 * $1.element }
            guard known > 0, count % known == 0 else {
                throw TensorError("reshape", "cannot infer -1 in \(newShape) from shape \(shape)")
            }
            dims[u] = count / known
        }
        guard dims.reduce(1, *) == count else {
            throw TensorError("reshape", "shape \(shape) (\(count) elements) cannot become \(newShape)")
        }
        return Tensor(shape: dims, storage: storage)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}

extension Tensor {
    /// Rows `range` of the first axis (a copy): `x[range]` in torch.
    public func slice(batch range: Range<Int>) throws -> Tensor {
        guard rank >= 1, range.lowerBound >= 0, range.upperBound <= shape[0] else {
            throw TensorError("slice", "rows \(range) out of \(shape)")
        }
        let row = count / max(shape[0], 1)
        let out = Tensor(uninitialized: [range.count] + shape.dropFirst())
        if out.count > 0 {
            out.storage.base.update(from: storage.base + range.lowerBound * row, count: range.count * row)
        }
        return out
    }
}
