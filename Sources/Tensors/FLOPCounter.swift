/// Counts the floating-point operations of the arithmetic-heavy kernels (GEMM, linear, convolution, attention)
/// the way a reference count does: 2·M·N·K per product and direct convolution for every convolution, Winograd
/// included (its savings show up as a higher effective GFLOP/s). Off unless `measure` runs: `varaudit bench`
/// divides the count of one call by its time.
public enum FLOPCounter {
    nonisolated(unsafe) static var counting = false
    nonisolated(unsafe) static var total: Double = 0

    /// Runs `body` with counting on (from one thread: kernels are entered from the caller's thread) and returns
    /// its result and the operations counted.
    public static func measure<T>(_ body: () throws -> T) rethrows -> (T, flops: Double) {
        total = 0
        counting = true
        defer { counting = false }
        let result = try body()
        return (result, total)
    }

    /// Counts `flops` operations: the kernels' own, or those of work a network skipped because its result is not
    /// used (the reference still does it).
    @inline(__always)
    public static func add(_ flops: Int) {
        if counting { total += Double(flops) }
    }
}
