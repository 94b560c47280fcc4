import CKernels
import Dispatch
import Foundation

/// Number of worker threads used by elementwise and norm kernels (default: all cores). Set it once at start-up,
/// before any kernel runs (e.g. from a `--threads` option). GEMMs are split over the same threads.
nonisolated(unsafe) public var kernelThreadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

/// Runs `body(range)` over `0..<count` split into contiguous chunks, on all cores when the work is large
/// enough (`count × costPerItem ≥ ~64k`), otherwise inline.
/// Honours `kernelThreadCount`; the one work-splitting helper of the package.
@inline(__always)
public func parallelChunks(_ count: Int, costPerItem: Int = 1, _ body: (Range<Int>) -> Void) {
    guard count > 0 else { return }
    let threads = kernelThreadCount
    if threads == 1 || count < 2 || count * costPerItem < 65_536 {
        body(0..<count)
        return
    }
    let chunks = min(count, threads * 4)
    // Each chunk writes a disjoint range.
    parallelFor(chunks, threads: threads) { c in
        let lo = count * c / chunks
        let hi = count * (c + 1) / chunks
        if lo < hi { body(lo..<hi) }
    }
}

/// Runs `body(i)` for every `i` in `0..<iterations` on up to `threads` threads and returns when all have run:
/// on the kernels' worker pool (`ck_parallel_run`: workers that spin briefly between runs, so back-to-back
/// layers do not each wait for a thread to wake up), or on Dispatch's threads when the pool is taken (a
/// concurrent caller, or a `body` that starts a parallel loop of its own). Which thread runs an index is not
/// fixed, so `body` must depend on its index only.
public func parallelFor(_ iterations: Int, threads: Int = kernelThreadCount, _ body: (Int) -> Void) {
    guard iterations > 0 else { return }
    if iterations == 1 || threads <= 1 {
        for i in 0..<iterations { body(i) }
        return
    }
    // The closure only runs while this call is on the stack.
    withoutActuallyEscaping(body) { body in
        var task = body
        let ran = withUnsafeMutablePointer(to: &task) { context in
            ck_parallel_run(
                iterations, threads,
                { context, index in context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index) },
                context)
        }
        if ran == 0 {
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: iterations) { shared.value($0) }
        }
    }
}

/// Wraps a value that is shared across worker threads under the caller's own discipline.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A raw pointer that may cross into concurrent closures (each task writes a disjoint range).
struct SendablePointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}
