import Checkpoints
import Foundation
import Memorization
import Tensors
import TestSupport
import Testing

/// faiss through CFaiss against the brute-force index, on shards written as float32 and float16.
struct FaissIndexTests {
    @Test(arguments: [IndexMetric.innerProduct, .l2])
    func flatSearchEqualsExactSearchOverF16AndF32Shards(metric: IndexMetric) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let drawn = syntheticEmbeddings(
            count: 3_100, dimension: 24, clusters: 40, seed: 1, normalized: metric == .innerProduct)
        let data = try rows(drawn, 0..<3_000)
        let queries = try rows(drawn, 3_000..<3_100)
        let urls = try writeShards(data, in: dir, sizes: [1_000, 1_200, 800], dtypes: [.float32, .float16])
        let shards = try EmbeddingShards(sources: urls)
        #expect(shards.count == 3_000)
        #expect(shards.shards.map(\.dtype) == ["<f4", "<f2", "<f4"])
        #expect(shards.shards.map(\.firstRow) == [0, 1_000, 2_200])

        var configuration = IndexBuildConfiguration()
        configuration.factory = "Flat"
        configuration.metric = metric
        let (flat, info) = try buildIndex(source: shards, configuration: configuration)
        #expect(info.factory == "Flat" && flat.count == 3_000 && flat.metric == metric)

        let exact = BruteForceIndex(dimension: 24, metric: metric)
        try shards.forEachBlock { _, block in try exact.add(block) }
        let a = try flat.search(queries, k: 10)
        let b = try exact.search(queries, k: 10)
        var mismatches = 0
        for q in 0..<100 where !sameNeighbours(a[q], b[q]) { mismatches += 1 }
        #expect(mismatches == 0)
        // The float16 shard's rows are stored as their float16 values.
        let row = try flat.reconstruct(1_500)
        #expect(row.allSatisfy { Float(Float16($0)) == $0 })
    }

    @Test func ivfWithTheTunedNprobeReachesRecall95On100kVectors() throws {
        // One draw (same cluster centres), split into indexed rows and fresh queries.
        let drawn = syntheticEmbeddings(count: 100_400, dimension: 32, clusters: 316, seed: 3)
        let data = try rows(drawn, 0..<100_000)
        let queries = try rows(drawn, 100_000..<100_400)
        let source = try InMemoryVectors(data)
        var lines: [String] = []
        let (index, info) = try buildIndex(source: source, configuration: .init()) { lines.append($0) }
        #expect(info.factory == "IVF1024,Flat")
        #expect(info.searchParameter == "nprobe")
        let nprobe = try #require(info.searchParameterValue)
        #expect(index.nprobe == nprobe)
        #expect(lines.contains { $0.contains("IVF1024,Flat") })
        #expect(lines.contains { $0.contains("nprobe = \(nprobe)") })

        // Fresh queries from the same distribution, against exact search.
        var exact = TopK(queries: 400, k: 10, metric: .innerProduct)
        try source.forEachBlock { first, block in try exact.accumulate(queries: queries, block: block, firstID: first) }
        let recall = recallAtK(found: try index.search(queries, k: 10), truth: exact.results(), k: 10)
        #expect(recall >= 0.95, "recall@10 \(recall) at nprobe \(nprobe)")

        // Written and read back (also memory-mapped), the parameter and results persist.
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("ivf.index")
        try index.write(to: file)
        for memoryMap in [false, true] {
            let loaded = try FaissIndex(contentsOf: file, memoryMap: memoryMap)
            #expect(loaded.nprobe == nprobe && loaded.nlist == 1024 && loaded.count == 100_000)
            #expect(loaded.typeName == "IndexIVFFlat")
            let again = try loaded.search(rows(queries, 0..<50), k: 10)
            let before = try index.search(rows(queries, 0..<50), k: 10)
            #expect(again.map { $0.map(\.id) } == before.map { $0.map(\.id) })
        }
        let report = try measureRecall(
            index: index, source: source, groundTruth: "memory", sample: 200, k: 10, normalize: false)
        #expect(report.recall >= 0.95)
    }

    @Test func smallSetsGetTunedHNSW() throws {
        let drawn = syntheticEmbeddings(count: 5_200, dimension: 16, clusters: 70, seed: 5)
        let data = try rows(drawn, 0..<5_000)
        let queries = try rows(drawn, 5_000..<5_200)
        let (index, info) = try buildIndex(source: try InMemoryVectors(data), configuration: .init())
        #expect(info.factory == "HNSW32" && info.searchParameter == "efSearch")
        #expect(index.efSearch == info.searchParameterValue)
        let exact = BruteForceIndex(dimension: 16, metric: .innerProduct)
        try exact.add(data)
        let recall = recallAtK(found: try index.search(queries, k: 10), truth: try exact.search(queries, k: 10), k: 10)
        #expect(recall >= 0.95)
    }

    @Test func automaticChoiceFollowsAutofaiss() {
        let big = 1 << 40
        #expect(FactoryChoice.automatic(count: 999, dimension: 768, memoryBudgetBytes: big).factory == "Flat")
        #expect(FactoryChoice.automatic(count: 20_000, dimension: 768, memoryBudgetBytes: big).factory == "HNSW32")
        #expect(
            FactoryChoice.automatic(count: 100_000, dimension: 768, memoryBudgetBytes: big).factory == "IVF1024,Flat")
        let million = FactoryChoice.automatic(count: 1_000_000, dimension: 768, memoryBudgetBytes: big)
        #expect(million.factory == "IVF4096,Flat" && million.trainingRows == 163_840)
        let tight = FactoryChoice.automatic(count: 1_000_000, dimension: 768, memoryBudgetBytes: 1 << 30)
        #expect(tight.factory == "OPQ64_768,IVF4096_HNSW32,PQ64x8")
        #expect(FactoryChoice.given("IVF256,PQ8", count: 50_000).trainingRows == 10_240)
    }

    @Test func bruteForceMatchesNaiveScores() throws {
        let data = syntheticEmbeddings(count: 300, dimension: 8, clusters: 5, seed: 7, normalized: false)
        let queries = syntheticEmbeddings(count: 7, dimension: 8, clusters: 5, seed: 8, normalized: false)
        let x = data.scalars
        let q = queries.scalars
        for metric in IndexMetric.allCases {
            let index = BruteForceIndex(dimension: 8, metric: metric)
            try index.add(data)
            let found = try index.search(queries, k: 5)
            for i in 0..<7 {
                let scores = (0..<300).map { j -> Float in
                    var s: Float = 0
                    for t in 0..<8 {
                        s +=
                            metric == .innerProduct
                            ? q[i * 8 + t] * x[j * 8 + t]
                            : (q[i * 8 + t] - x[j * 8 + t]) * (q[i * 8 + t] - x[j * 8 + t])
                    }
                    return s
                }
                let order = (0..<300).sorted {
                    metric == .innerProduct ? scores[$0] > scores[$1] : scores[$0] < scores[$1]
                }
                #expect(found[i].map(\.id) == Array(order.prefix(5)))
                for n in found[i] { #expect(abs(n.score - scores[n.id]) <= 1e-4) }
            }
        }
    }

    @Test func factoryErrorsCarryFaissMessage() {
        #expect {
            _ = try FaissIndex(dimension: 16, factory: "NoSuchIndex42", metric: .l2)
        } throws: { error in
            "\(error)".contains("NoSuchIndex42") && "\(error)".contains("faiss")
        }
    }
}
