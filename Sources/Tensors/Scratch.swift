import Foundation

/// Scratch memory for kernels (Winograd's transformed filters and tiles, im2col columns), kept between calls.
///
/// Freshly allocated large blocks come from the system one page fault at a time, which costs more than the
/// transforms that fill them (measured: a 1280-channel F(4×4) layer at 8×8 spent two thirds of its time
/// there). The pool keeps the buffers it handed out and gives them to the next call; it holds at most as many
/// as were ever in use at once, each as large as the largest request it served. (Freeing buffers above 64 MB
/// instead saved 5% of a 512 px step's peak memory and cost 35% of its time.)
final class ScratchPool: @unchecked Sendable {
    private final class Buffer {
        let base: UnsafeMutablePointer<Float>
        let capacity: Int
        init(_ capacity: Int) {
            base = .allocate(capacity: max(capacity, 1))
            self.capacity = capacity
        }
        deinit { base.deallocate() }
    }

    static let shared = ScratchPool()

    private let lock = NSLock()
    private var free: [Buffer] = []

    /// Calls `body` with `count` floats of uninitialized scratch memory, valid only during the call.
    func with<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let buffer = take(count)
        defer { give(buffer) }
        return try body(buffer.base)
    }

    /// The smallest free buffer that fits, else a new one replacing the largest free buffer (so the pool does
    /// not hoard buffers that are too small).
    private func take(_ count: Int) -> Buffer {
        lock.lock()
        defer { lock.unlock() }
        if let i = free.indices.filter({ free[$0].capacity >= count }).min(by: { free[$0].capacity < free[$1].capacity }
        ) {
            return free.remove(at: i)
        }
        if let i = free.indices.max(by: { free[$0].capacity < free[$1].capacity }) { free.remove(at: i) }
        return Buffer(count)
    }

    private func give(_ buffer: Buffer) {
        lock.lock()
        free.append(buffer)
        lock.unlock()
    }
}

/// Three scratch buffers at once (`withScratch(a) { withScratch(b) { … } }` without the nesting).
func withScratch<R>(
    _ a: Int, _ b: Int, _ c: Int,
    _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) throws -> R
) rethrows -> R {
    try ScratchPool.shared.with(a) { pa in
        try ScratchPool.shared.with(b) { pb in try ScratchPool.shared.with(c) { pc in try body(pa, pb, pc) } }
    }
}
