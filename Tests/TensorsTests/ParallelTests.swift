import CKernels
import Foundation
import Tensors
import Testing

/// The kernels' worker pool (`parallelFor`, `ck_parallel_run`): every index runs exactly once, whoever runs it,
/// across back-to-back runs, runs after the workers have gone to sleep, nested and concurrent callers.
@Suite(.serialized)
struct ParallelTests {
    /// Runs `parallelFor` and counts how many times each index ran.
    static func counts(_ iterations: Int, threads: Int, work: Int = 0) -> [Int] {
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(iterations, 1))
        hits.initialize(repeating: 0, count: max(iterations, 1))
        defer { hits.deallocate() }
        let shared = UncheckedPointer(hits)
        parallelFor(iterations, threads: threads) { i in
            var x = 0.0
            for j in 0..<work { x += Double(j ^ i) }
            if x < 0 { return }  // keeps the busy loop
            // Each index writes only its own slot; a repeat would show as a count of 2.
            shared.base[i] += 1
        }
        return Array(UnsafeBufferPointer(start: hits, count: iterations))
    }

    @Test(arguments: [1, 2, 3, 8])
    func everyIndexRunsOnce(threads: Int) {
        for iterations in [0, 1, 2, 3, 7, 64, 1000] {
            let c = Self.counts(iterations, threads: threads, work: iterations < 100 ? 2000 : 0)
            #expect(c == [Int](repeating: 1, count: iterations), "\(iterations) iterations on \(threads) threads")
        }
    }

    /// Thousands of short runs back to back (the workers spinning between them), then runs that find the workers
    /// asleep, each checked whole.
    @Test func backToBackAndAfterSleep() throws {
        for run in 0..<5000 {
            let n = 1 + run % 9
            let c = Self.counts(n, threads: 2 + run % 3)
            #expect(c.allSatisfy { $0 == 1 }, "run \(run)")
            if c.contains(where: { $0 != 1 }) { break }
        }
        for _ in 0..<3 {
            Thread.sleep(forTimeInterval: 0.02)  // longer than the workers spin
            #expect(Self.counts(16, threads: 2, work: 5000) == [Int](repeating: 1, count: 16))
        }
    }

    /// A body that starts a parallel loop of its own, and several threads calling at once: the pool serves one
    /// caller, the others run on Dispatch, and every index of every call still runs once.
    @Test func nestedAndConcurrentCallers() {
        let inner = UnsafeMutablePointer<Int>.allocate(capacity: 4 * 5)
        inner.initialize(repeating: 0, count: 20)
        defer { inner.deallocate() }
        let shared = UncheckedPointer(inner)
        parallelFor(4, threads: 2) { i in
            parallelFor(5, threads: 2) { j in shared.base[i * 5 + j] += 1 }
        }
        #expect(Array(UnsafeBufferPointer(start: inner, count: 20)) == [Int](repeating: 1, count: 20))

        let results = UnsafeMutablePointer<Bool>.allocate(capacity: 6)
        results.initialize(repeating: false, count: 6)
        defer { results.deallocate() }
        let ok = UncheckedPointer(results)
        DispatchQueue.concurrentPerform(iterations: 6) { caller in
            var good = true
            for _ in 0..<200 { good = good && Self.counts(11, threads: 2).allSatisfy { $0 == 1 } }
            ok.base[caller] = good
        }
        #expect(Array(UnsafeBufferPointer(start: results, count: 6)) == [Bool](repeating: true, count: 6))
    }

    /// The C entry point says when it did not run a call (the pool is taken by a running call), and runs a call
    /// of no tasks trivially.
    @Test func poolReportsWhenTaken() {
        let box = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        box.initialize(repeating: -1, count: 2)
        defer { box.deallocate() }
        let outer = ck_parallel_run(
            1, 2,
            { context, _ in
                let p = context!.assumingMemoryBound(to: Int32.self)
                // Nested inside a running call: refused, nothing run.
                p[1] = ck_parallel_run(3, 2, { _, _ in fatalError("a refused call ran a task") }, nil)
                p[0] = 1
            }, box)
        #expect(outer == 1)
        #expect(box[0] == 1)
        #expect(box[1] == 0)
        #expect(ck_parallel_run(0, 2, { _, _ in fatalError("no task to run") }, nil) == 1)
    }
}

/// A pointer the test's concurrent closures share (each writes its own slots).
struct UncheckedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}
