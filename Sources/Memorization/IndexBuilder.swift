import CFaiss
import Foundation
import Tensors

/// Which faiss index to build, and what to train and tune.
public struct FactoryChoice: Sendable, Equatable {
    /// The faiss factory string.
    public var factory: String
    /// Why (printed on stderr by the CLI).
    public var reason: String
    /// Rows sampled for training (0: needs none).
    public var trainingRows: Int
    /// The search-time parameter to tune (`nprobe`, `efSearch`), if any, and the values to try in order.
    public var searchParameter: String?
    public var candidates: [Int]

    /// autofaiss's rule by size (docs/algorithms.md#index-choice): `Flat` under 1,000 vectors; `HNSW32` under 50,000;
    /// `IVF{k},Flat` with k = 4·√n rounded to a power of two while the raw vectors fit in `memoryBudgetBytes`;
    /// otherwise `OPQ{m}_{d'},IVF{k}_HNSW32,PQ{m}x8` (m ≤ 64 sub-quantizers of 8 bits, d' = d rounded up to a
    /// multiple of m). IVF trains on 40·k sampled rows (faiss's floor of 39 per centroid).
    public static func automatic(count n: Int, dimension d: Int, memoryBudgetBytes: Int) -> FactoryChoice {
        if n < 1_000 {
            return FactoryChoice(
                factory: "Flat", reason: "\(n) vectors < 1,000: exact search", trainingRows: 0, searchParameter: nil,
                candidates: [])
        }
        if n < 50_000 {
            return FactoryChoice(
                factory: "HNSW32", reason: "\(n) vectors < 50,000: HNSW graph, efSearch tuned for recall",
                trainingRows: 0, searchParameter: "efSearch", candidates: [16, 32, 64, 128, 256, 512, 1024, 2048])
        }
        let lists = ivfLists(count: n)
        let raw = n * d * 4 + n * 8
        if raw <= memoryBudgetBytes {
            return FactoryChoice(
                factory: "IVF\(lists),Flat",
                reason:
                    "\(n) vectors, \(raw >> 20) MiB raw ≤ budget \(memoryBudgetBytes >> 20) MiB: IVF with k = 4·√n → \(lists) lists",
                trainingRows: min(n, 40 * lists), searchParameter: "nprobe", candidates: powersOfTwo(upTo: lists))
        }
        let m = pqSubquantizers(dimension: d)
        let dOut = (d + m - 1) / m * m
        return FactoryChoice(
            factory: "OPQ\(m)_\(dOut),IVF\(lists)_HNSW32,PQ\(m)x8",
            reason:
                "\(n) vectors, \(raw >> 20) MiB raw > budget \(memoryBudgetBytes >> 20) MiB: OPQ + IVF(\(lists)) + PQ\(m) codes",
            trainingRows: min(n, max(40 * lists, 65_536)), searchParameter: "nprobe",
            candidates: powersOfTwo(upTo: lists))
    }

    /// A factory string given by the user: IVF trains on 40 rows per list (at least 10,000 rows when PQ
    /// codebooks are trained too) and tunes `nprobe`; HNSW tunes `efSearch`.
    public static func given(_ factory: String, count n: Int) -> FactoryChoice {
        if let lists = firstInteger(after: "IVF", in: factory) {
            let pq = factory.contains("PQ") || factory.contains("SQ") || factory.contains("OPQ")
            return FactoryChoice(
                factory: factory, reason: "given", trainingRows: min(n, max(40 * lists, pq ? 10_000 : 0)),
                searchParameter: "nprobe", candidates: powersOfTwo(upTo: lists))
        }
        if factory.contains("HNSW") {
            let pq = factory.contains("PQ") || factory.contains("SQ")
            return FactoryChoice(
                factory: factory, reason: "given", trainingRows: pq ? min(n, 10_000) : 0, searchParameter: "efSearch",
                candidates: [16, 32, 64, 128, 256, 512, 1024, 2048])
        }
        let trained =
            factory.contains("PQ") || factory.contains("SQ") || factory.contains("LSH") || factory.contains("PCA")
        return FactoryChoice(
            factory: factory, reason: "given", trainingRows: trained ? min(n, 10_000) : 0, searchParameter: nil,
            candidates: [])
    }

    /// 4·√n rounded (in log scale) to a power of two, at least 16.
    static func ivfLists(count n: Int) -> Int {
        let target = 4 * Double(n).squareRoot()
        return max(16, 1 << Int(log2(target).rounded()))
    }

    static func pqSubquantizers(dimension d: Int) -> Int {
        for m in [64, 48, 32, 24, 16, 8, 4, 2, 1] where m * 4 <= d { return m }
        return 1
    }

    static func powersOfTwo(upTo limit: Int) -> [Int] {
        var out: [Int] = []
        var v = 1
        while v <= limit {
            out.append(v)
            v *= 2
        }
        return out
    }

    static func firstInteger(after prefix: String, in text: String) -> Int? {
        guard let r = text.range(of: prefix) else { return nil }
        let digits = text[r.upperBound...].prefix(while: { $0.isNumber })
        return Int(digits)
    }
}

/// One index build's settings.
public struct IndexBuildConfiguration: Sendable {
    /// faiss factory string; nil (default) chooses by size (`FactoryChoice.automatic`).
    public var factory: String? = nil
    /// Metric; default inner product (cosine with `normalize`).
    public var metric: IndexMetric = .innerProduct
    /// L2-normalize every vector before training and adding; default false.
    public var normalize: Bool = false
    /// recall@`k` the tuned search parameter must reach on the tuning queries; default 0.97 (the queries are
    /// stored rows, which find themselves, so this leaves a margin for unseen queries at 0.95).
    public var targetRecall: Double = 0.97
    /// Stored rows used as tuning queries; default 256.
    public var tuningQueries: Int = 256
    /// k of the tuning recall; default 10.
    public var k: Int = 10
    /// Memory allowed for raw vectors before the automatic choice turns to PQ; default half of the memory
    /// available when the build starts.
    public var memoryBudgetBytes: Int? = nil
    /// Seed of the training and tuning samples; default 0.
    public var seed: UInt64 = 0

    public init() {}
}

/// Builds a faiss index over `source`: choose the factory, train on a random sample, add every row in
/// order (ids = global row ids), then tune `nprobe` / `efSearch` to the smallest value (powers of two)
/// whose recall@k on sampled stored rows reaches the target against exact search. Progress goes to
/// `progress`. Returns the index (parameter set, so `write` keeps it) and what was done.
public func buildIndex(
    source: any VectorSource, configuration: IndexBuildConfiguration, progress: (String) -> Void = { _ in }
) throws -> (index: FaissIndex, info: IndexBuildInfo) {
    let start = Date()
    let n = source.count
    let d = source.dimension
    guard n > 0, d > 0 else { throw MemorizationError("no vectors to index") }
    let budget = configuration.memoryBudgetBytes ?? defaultMemoryBudget()
    let choice =
        configuration.factory.map { FactoryChoice.given($0, count: n) }
        ?? FactoryChoice.automatic(count: n, dimension: d, memoryBudgetBytes: budget)
    progress(
        "index: \(choice.factory) (\(choice.reason)); metric \(configuration.metric.rawValue)\(configuration.normalize ? ", normalized" : "")"
    )
    let index = try FaissIndex(dimension: d, factory: choice.factory, metric: configuration.metric)

    var rng = SplitMix64(seed: configuration.seed)
    let trainingIDs = choice.trainingRows > 0 ? sampleWithoutReplacement(choice.trainingRows, from: n, rng: &rng) : []
    let tuning = choice.searchParameter != nil
    let tuningIDs = tuning ? sampleWithoutReplacement(min(configuration.tuningQueries, n), from: n, rng: &rng) : []

    var tuningQueries: Tensor?
    if !trainingIDs.isEmpty || !tuningIDs.isEmpty {
        progress("index: sampling \(trainingIDs.count) training and \(tuningIDs.count) tuning rows")
        var sample = try source.gather(trainingIDs + tuningIDs)
        if configuration.normalize { l2NormalizeRows(&sample) }
        let all = sample.scalars
        if !trainingIDs.isEmpty {
            let training = try Tensor(shape: [trainingIDs.count, d], values: Array(all[..<(trainingIDs.count * d)]))
            let t0 = Date()
            progress("index: training on \(trainingIDs.count) vectors")
            try index.train(training)
            progress(String(format: "index: trained in %.1f s", Date().timeIntervalSince(t0)))
        }
        if !tuningIDs.isEmpty {
            tuningQueries = try Tensor(shape: [tuningIDs.count, d], values: Array(all[(trainingIDs.count * d)...]))
        }
    }
    if !index.isTrained {
        throw MemorizationError("factory '\(choice.factory)' needs training but no training rows were chosen")
    }

    var exact = tuningQueries.map { TopK(queries: $0.shape[0], k: configuration.k, metric: configuration.metric) }
    var added = 0
    var lastReport = Date()
    try source.forEachBlock { first, block in
        var block = block
        if configuration.normalize { l2NormalizeRows(&block) }
        try index.add(block)
        if let q = tuningQueries { try exact?.accumulate(queries: q, block: block, firstID: first) }
        added += block.shape[0]
        if Date().timeIntervalSince(lastReport) > 2 || added == n {
            progress("index: added \(added)/\(n)")
            lastReport = Date()
        }
    }

    var info = IndexBuildInfo(
        factory: choice.factory, factoryReason: choice.reason, metric: configuration.metric,
        normalized: configuration.normalize, dimension: d, count: n, shards: (source as? EmbeddingShards)?.shards ?? [],
        metadataFile: nil, trainingRows: trainingIDs.count, searchParameter: nil, searchParameterValue: nil,
        tunedRecall: nil, buildSeconds: 0, faissVersion: String(cString: cfaiss_version()))

    if let parameter = choice.searchParameter, let queries = tuningQueries, let truth = exact?.results() {
        var chosen: (value: Int, recall: Double)?
        for value in choice.candidates {
            try setSearchParameter(index, parameter, value)
            let t0 = Date()
            let found = try index.search(queries, k: configuration.k)
            let ms = Date().timeIntervalSince(t0) * 1000 / Double(queries.shape[0])
            let recall = recallAtK(found: found, truth: truth, k: configuration.k)
            progress(
                String(
                    format: "index: %@ = %d → recall@%d %.4f, %.3f ms/query (batched)", parameter, value,
                    configuration.k, recall, ms))
            chosen = (value, recall)
            if recall >= configuration.targetRecall { break }
        }
        if let chosen {
            if chosen.recall < configuration.targetRecall {
                progress(
                    "index: warning: recall target \(configuration.targetRecall) not reached; using \(parameter) = \(chosen.value)"
                )
            }
            progress("index: \(parameter) = \(chosen.value)")
            info.searchParameter = parameter
            info.searchParameterValue = chosen.value
            info.tunedRecall = chosen.recall
        }
    }
    info.buildSeconds = Date().timeIntervalSince(start)
    return (index, info)
}

/// Sets `nprobe` or `efSearch`; with `nprobe`, an HNSW coarse quantizer (if there is one) is also set to
/// look at max(64, 2·nprobe) candidates (`quantizer_efSearch`).
func setSearchParameter(_ index: FaissIndex, _ parameter: String, _ value: Int) throws {
    try index.setParameter(parameter, Double(value))
    if parameter == "nprobe" { try? index.setParameter("quantizer_efSearch", Double(max(64, 2 * value))) }
}

/// Mean over queries of |found ∩ truth| / |truth| for the first `k` of each.
public func recallAtK(found: [[Neighbor]], truth: [[Neighbor]], k: Int) -> Double {
    guard !truth.isEmpty else { return 1 }
    var total = 0.0
    for (f, t) in zip(found, truth) {
        let expected = Set(t.prefix(k).map(\.id))
        guard !expected.isEmpty else {
            total += 1
            continue
        }
        let hits = f.prefix(k).filter { expected.contains($0.id) }.count
        total += Double(hits) / Double(expected.count)
    }
    return total / Double(truth.count)
}

/// recall@k of an index measured against exact search over the stored vectors.
public struct RecallReport: Sendable, Codable {
    /// Queries (sampled stored rows).
    public var queries: Int
    /// k.
    public var k: Int
    /// Mean recall@k.
    public var recall: Double
    /// Milliseconds per query, batched search.
    public var msPerQuery: Double
    /// Where the exact vectors came from: `shards` (re-read from the embedding files) or `reconstructed`
    /// (decoded from the index; lossy for PQ codes).
    public var groundTruth: String
}

/// Samples `sample` stored rows of `source` as queries (normalized when `normalize`), searches `index`, and
/// compares with exact search over all of `source`.
public func measureRecall(
    index: any MemorizationIndex, source: any VectorSource, groundTruth: String, sample: Int, k: Int,
    normalize: Bool, seed: UInt64 = 0
) throws -> RecallReport {
    guard source.count == index.count, source.dimension == index.dimension else {
        throw MemorizationError(
            "recall: the vectors (\(source.count) × \(source.dimension)) do not match the index (\(index.count) × \(index.dimension))"
        )
    }
    var rng = SplitMix64(seed: seed)
    let ids = sampleWithoutReplacement(min(sample, source.count), from: source.count, rng: &rng)
    var queries = try source.gather(ids)
    if normalize { l2NormalizeRows(&queries) }
    var exact = TopK(queries: ids.count, k: k, metric: index.metric)
    try source.forEachBlock { first, block in
        var block = block
        if normalize { l2NormalizeRows(&block) }
        try exact.accumulate(queries: queries, block: block, firstID: first)
    }
    let t0 = Date()
    let found = try index.search(queries, k: k)
    let ms = Date().timeIntervalSince(t0) * 1000 / Double(max(ids.count, 1))
    return RecallReport(
        queries: ids.count, k: k, recall: recallAtK(found: found, truth: exact.results(), k: k), msPerQuery: ms,
        groundTruth: groundTruth)
}

/// The vectors stored in a faiss index, decoded with `reconstruct_n` block by block.
public struct ReconstructedVectors: VectorSource {
    public let index: FaissIndex
    public init(_ index: FaissIndex) { self.index = index }
    public var count: Int { index.count }
    public var dimension: Int { index.dimension }
    public func forEachBlock(_ body: (Int, Tensor) throws -> Void) throws {
        var start = 0
        while start < count {
            let rows = min(65_536, count - start)
            try body(start, try index.reconstruct(range: start..<(start + rows)))
            start += rows
        }
    }
}

/// Half of `MemAvailable` (Linux), or of physical memory elsewhere.
func defaultMemoryBudget() -> Int {
    if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 / 2 }
        }
    }
    return Int(ProcessInfo.processInfo.physicalMemory / 2)
}

/// `count` distinct ids from `0..<n` in random order (Floyd's algorithm for small samples, a partial
/// Fisher–Yates shuffle otherwise).
func sampleWithoutReplacement(_ count: Int, from n: Int, rng: inout SplitMix64) -> [Int] {
    let count = min(count, n)
    if count * 8 < n {
        var chosen = Set<Int>()
        var out: [Int] = []
        for j in (n - count)..<n {
            let t = Int.random(in: 0...j, using: &rng)
            let pick = chosen.contains(t) ? j : t
            chosen.insert(pick)
            out.append(pick)
        }
        return out
    }
    var all = Array(0..<n)
    for i in 0..<count {
        let j = Int.random(in: i..<n, using: &rng)
        all.swapAt(i, j)
    }
    return Array(all[..<count])
}
