import Checkpoints
import Foundation
import Tensors

/// Two audit runs of the same inputs and seeds with different models, side by side: variations are paired by
/// (input SHA-256, variation index, seed), and for each flag and score the rate or mean in A and in B, the paired
/// difference B − A with a 95% bootstrap interval over inputs, and a p-value (McNemar's exact test for flags, a
/// sign-flip permutation test over inputs for scores). See docs/algorithms.md#comparing-runs.
public struct RunComparison: Sendable {
    /// How the comparison is computed.
    public struct Options: Sendable {
        /// Compare runs whose parameters differ in more than the model. Default false.
        public var allowDifferentParameters = false
        /// Bootstrap resamples (and sign-flip permutations). Default 2000.
        public var resamples = 2000
        /// Seed of the resampling. Default 0.
        public var seed: UInt64 = 0

        public init() {}
    }

    /// One run of the comparison.
    public struct Side: Sendable {
        public var run: RunRecord
        public var database: String
        public var variations: Int
    }

    /// The values of one metric for one paired variation (nil where the run has none, e.g. without an index).
    public struct Pair: Sendable {
        public var inputSHA256: String
        public var input: String
        public var k: Int
        public var a: VariationResult
        public var b: VariationResult
    }

    /// One compared quantity.
    public struct Metric: Sendable, Equatable {
        /// `memorized`, `reproduces-input`, `unsafe` (rates), `memorization_score`, `input_similarity`,
        /// `max_concept_margin` (means).
        public var name: String
        /// Whether this is a flag (a rate of 0/1 values) or a score (a mean).
        public var isFlag: Bool
        public var a: Double?
        public var b: Double?
        /// `b − a`.
        public var difference: Double?
        /// 95% bootstrap percentile interval of the difference, resampling inputs.
        public var ci95: (Double, Double)?
        public var pValue: Double?
        /// Pairs where both runs have a value.
        public var pairs: Int
        /// Flags only: pairs flagged in A only and in B only (McNemar's discordant pairs).
        public var onlyA: Int?
        public var onlyB: Int?

        public static func == (x: Metric, y: Metric) -> Bool {
            x.name == y.name && x.a == y.a && x.b == y.b && x.difference == y.difference && x.pValue == y.pValue
                && x.ci95?.0 == y.ci95?.0 && x.ci95?.1 == y.ci95?.1 && x.pairs == y.pairs
        }
    }

    /// Per-input summary of one run.
    public struct InputStats: Sendable, Equatable {
        public var variations = 0
        public var memorized = 0
        public var reproducesInput = 0
        public var unsafe = 0
        public var memorizationScore: Double?
        public var inputSimilarity: Double?
        public var maxConceptMargin: Double?
    }

    /// One input in both runs.
    public struct InputComparison: Sendable {
        public var input: String
        public var inputSHA256: String
        public var a: InputStats
        public var b: InputStats
    }

    public var a: Side
    public var b: Side
    public var pairs: [Pair]
    /// Variations of either run without a partner, by reason.
    public var unpaired: [String: Int]
    public var metrics: [Metric]
    public var inputs: [InputComparison]
    public var options: Options

    /// The metric names, in output order.
    public static let flagMetrics = ["memorized", "reproduces-input", "unsafe"]
    public static let scoreMetrics = ["memorization_score", "input_similarity", "max_concept_margin"]

    /// Compares run `runA` of `storeA` with run `runB` of `storeB` (which may be the same store).
    public static func compare(
        _ storeA: AuditStore, run runA: Int64?, with storeB: AuditStore, run runB: Int64?, options: Options = .init()
    ) throws -> RunComparison {
        let recordA = try storeA.run(runA)
        let recordB = try storeB.run(runB)
        let resultsA = try storeA.variations(VariationQuery(run: recordA.id))
        let resultsB = try storeB.variations(VariationQuery(run: recordB.id))
        let inputsA = try storeA.inputs(run: recordA.id!)
        let inputsB = try storeB.inputs(run: recordB.id!)
        if !options.allowDifferentParameters {
            let problems = differences(recordA, recordB, inputsA: inputsA, inputsB: inputsB)
            if !problems.isEmpty {
                throw AuditStoreError(
                    "runs \(recordA.id!) and \(recordB.id!) differ in more than the model: "
                        + problems.joined(separator: "; ") + " (--allow-different-parameters compares them anyway)")
            }
        }
        struct Key: Hashable {
            var sha: String
            var k: Int
            var seed: UInt64
        }
        var byKeyB: [Key: VariationResult] = [:]
        for r in resultsB { byKeyB[Key(sha: r.input.sha256, k: r.variation.k, seed: r.variation.seed)] = r }
        let shasA = Set(resultsA.map(\.input.sha256))
        let shasB = Set(resultsB.map(\.input.sha256))
        var pairs: [Pair] = []
        var unpaired: [String: Int] = [:]
        var matchedB: Set<Key> = []
        for r in resultsA {
            let key = Key(sha: r.input.sha256, k: r.variation.k, seed: r.variation.seed)
            guard let partner = byKeyB[key] else {
                let reason =
                    !shasB.contains(key.sha)
                    ? "different inputs"
                    : (resultsB.contains { $0.input.sha256 == key.sha && $0.variation.k == key.k }
                        ? "different seeds" : "variation missing in B")
                unpaired[reason, default: 0] += 1
                continue
            }
            matchedB.insert(key)
            if partner.variation.width != r.variation.width || partner.variation.height != r.variation.height {
                unpaired["different sizes", default: 0] += 2
                continue
            }
            pairs.append(Pair(inputSHA256: key.sha, input: r.input.path, k: key.k, a: r, b: partner))
        }
        for r in resultsB where !matchedB.contains(Key(sha: r.input.sha256, k: r.variation.k, seed: r.variation.seed)) {
            let reason =
                !shasA.contains(r.input.sha256)
                ? "different inputs"
                : (resultsA.contains { $0.input.sha256 == r.input.sha256 && $0.variation.k == r.variation.k }
                    ? "different seeds" : "variation missing in A")
            unpaired[reason, default: 0] += 1
        }
        pairs.sort { ($0.inputSHA256, $0.k) < ($1.inputSHA256, $1.k) }
        var metrics: [Metric] = []
        for name in flagMetrics + scoreMetrics {
            metrics.append(metric(name, pairs: pairs, options: options))
        }
        var inputs: [InputComparison] = []
        for (sha, group) in Dictionary(grouping: pairs, by: \.inputSHA256).sorted(by: { $0.key < $1.key }) {
            inputs.append(
                InputComparison(
                    input: group[0].input, inputSHA256: sha, a: stats(group.map(\.a)), b: stats(group.map(\.b))))
        }
        return RunComparison(
            a: Side(run: recordA, database: storeA.url.path, variations: resultsA.count),
            b: Side(run: recordB, database: storeB.url.path, variations: resultsB.count), pairs: pairs,
            unpaired: unpaired, metrics: metrics, inputs: inputs, options: options)
    }

    /// The value of metric `name` for one variation (1/0 for flags).
    public static func value(_ name: String, _ r: VariationResult) -> Double? {
        switch name {
        case "memorization_score": return r.variation.memorizationScore
        case "input_similarity": return r.variation.inputSimilarity
        case "max_concept_margin": return r.maxConceptScore
        default: return r.flags.contains(name) ? 1 : 0
        }
    }

    static func stats(_ results: [VariationResult]) -> InputStats {
        func mean(_ name: String) -> Double? {
            let v = results.compactMap { value(name, $0) }
            return v.isEmpty ? nil : v.reduce(0, +) / Double(v.count)
        }
        return InputStats(
            variations: results.count, memorized: results.filter { $0.flags.contains("memorized") }.count,
            reproducesInput: results.filter { $0.flags.contains("reproduces-input") }.count,
            unsafe: results.filter { $0.flags.contains("unsafe") }.count, memorizationScore: mean("memorization_score"),
            inputSimilarity: mean("input_similarity"), maxConceptMargin: mean("max_concept_margin"))
    }

    /// One metric over the pairs: means, difference, bootstrap interval and p-value.
    static func metric(_ name: String, pairs: [Pair], options: Options) -> Metric {
        let isFlag = flagMetrics.contains(name)
        // Per input (sorted by SHA-256): the (a, b) values of its pairs where both runs have one.
        var groups: [[(Double, Double)]] = []
        for (_, group) in Dictionary(grouping: pairs, by: \.inputSHA256).sorted(by: { $0.key < $1.key }) {
            let values = group.compactMap { p -> (Double, Double)? in
                guard let x = value(name, p.a), let y = value(name, p.b) else { return nil }
                return (x, y)
            }
            if !values.isEmpty { groups.append(values) }
        }
        let all = groups.flatMap { $0 }
        var m = Metric(name: name, isFlag: isFlag, pairs: all.count)
        guard !all.isEmpty else { return m }
        let n = Double(all.count)
        m.a = all.map(\.0).reduce(0, +) / n
        m.b = all.map(\.1).reduce(0, +) / n
        m.difference = m.b! - m.a!
        m.ci95 = bootstrapInterval(groups, resamples: options.resamples, seed: options.seed)
        if isFlag {
            let onlyA = all.filter { $0.0 == 1 && $0.1 == 0 }.count
            let onlyB = all.filter { $0.0 == 0 && $0.1 == 1 }.count
            m.onlyA = onlyA
            m.onlyB = onlyB
            m.pValue = mcNemarExact(onlyA: onlyA, onlyB: onlyB)
        } else {
            m.pValue = signFlipPValue(groups, permutations: options.resamples, seed: options.seed)
        }
        return m
    }

    /// The 2.5th and 97.5th percentiles (linear interpolation, as numpy's default) of the pooled mean difference
    /// over `resamples` resamples of the inputs with replacement. Draws: `SplitMix64(seed)`, input index
    /// `next() % n` for each of the n inputs of each resample, in order.
    public static func bootstrapInterval(_ groups: [[(Double, Double)]], resamples: Int, seed: UInt64) -> (
        Double, Double
    ) {
        let n = groups.count
        guard n > 0, resamples > 0 else { return (.nan, .nan) }
        let sums = groups.map { g in (g.map { $0.1 - $0.0 }.reduce(0, +), Double(g.count)) }
        var rng = SplitMix64(seed: seed)
        var stats: [Double] = []
        stats.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var total = 0.0
            var count = 0.0
            for _ in 0..<n {
                let (s, c) = sums[Int(rng.next() % UInt64(n))]
                total += s
                count += c
            }
            stats.append(total / count)
        }
        stats.sort()
        return (percentile(stats, 0.025), percentile(stats, 0.975))
    }

    /// numpy's default (linear) percentile of sorted values.
    public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let lo = Int(position.rounded(.down))
        let hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (position - Double(lo))
    }

    /// McNemar's exact test: two-sided binomial test of the discordant pairs against p = ½,
    /// `min(1, 2 · P(X ≤ min(b, c)))` with `X ~ Binomial(b + c, ½)`; 1 when there are none.
    public static func mcNemarExact(onlyA b: Int, onlyB c: Int) -> Double {
        let n = b + c
        guard n > 0 else { return 1 }
        let k = min(b, c)
        var tail = 0.0
        for i in 0...k {
            tail += exp(logChoose(n, i) - Double(n) * log(2.0))
        }
        return min(1, 2 * tail)
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double {
        lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// A paired sign-flip permutation test over inputs: the statistic is the sum over inputs of Σ(b − a); each
    /// permutation flips every input's sum with probability ½ (`SplitMix64(seed ^ 0x9E3779B97F4A7C15)`, bit 0
    /// of `next()` per input); p = (1 + #{|S*| ≥ |S|}) / (1 + permutations).
    public static func signFlipPValue(_ groups: [[(Double, Double)]], permutations: Int, seed: UInt64) -> Double {
        let d = groups.map { g in g.map { $0.1 - $0.0 }.reduce(0, +) }
        let observed = abs(d.reduce(0, +))
        var rng = SplitMix64(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        var extreme = 0
        for _ in 0..<permutations {
            var s = 0.0
            for x in d { s += rng.next() & 1 == 1 ? -x : x }
            if abs(s) >= observed - 1e-12 { extreme += 1 }
        }
        return Double(extreme + 1) / Double(permutations + 1)
    }

    /// What differs between two runs besides the model: parameters (file locations aside) and the inputs.
    static func differences(_ a: RunRecord, _ b: RunRecord, inputsA: [InputRecord], inputsB: [InputRecord]) -> [String]
    {
        var out = RunParameters.differences(
            RunParameters.withoutLocations(of: a), RunParameters.withoutLocations(of: b)
        ).map {
            "\($0.key): \($0.a) in A, \($0.b) in B"
        }
        let shaA = Dictionary(inputsA.map { ($0.sha256, $0.path) }, uniquingKeysWith: { x, _ in x })
        let shaB = Dictionary(inputsB.map { ($0.sha256, $0.path) }, uniquingKeysWith: { x, _ in x })
        let onlyA = shaA.keys.filter { shaB[$0] == nil }.compactMap { shaA[$0] }.sorted()
        let onlyB = shaB.keys.filter { shaA[$0] == nil }.compactMap { shaB[$0] }.sorted()
        if !onlyA.isEmpty || !onlyB.isEmpty {
            func names(_ l: [String]) -> String {
                l.prefix(3).map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
                    + (l.count > 3 ? ", …" : "")
            }
            out.append(
                "inputs: \(onlyA.count) only in A\(onlyA.isEmpty ? "" : " (\(names(onlyA)))"), "
                    + "\(onlyB.count) only in B\(onlyB.isEmpty ? "" : " (\(names(onlyB)))")")
        }
        return out
    }
}

extension RunComparison {
    /// `compare --json`: `{"a": {...}, "b": {...}, "paired", "unpaired", "unpaired_reasons", "metrics": [{"name",
    /// "a", "b", "difference", "ci95", "p_value", "pairs", "test"}], "inputs": [{"input", "input_sha256", "a",
    /// "b"}], "bootstrap": {"resamples", "seed"}}`.
    public var json: JSONValue {
        func side(_ s: Side) -> JSONValue {
            .object([
                "run": .int(Int(s.run.id ?? 0)), "db": .string(s.database), "model": .string(s.run.model),
                "weights": JSONValue.parse(s.run.weights) ?? .null, "variations": .int(s.variations),
            ])
        }
        func stats(_ s: InputStats) -> JSONValue {
            .object([
                "variations": .int(s.variations), "memorized": .int(s.memorized),
                "reproduces_input": .int(s.reproducesInput), "unsafe": .int(s.unsafe),
                "memorization_score": .number(s.memorizationScore), "input_similarity": .number(s.inputSimilarity),
                "max_concept_margin": .number(s.maxConceptMargin),
            ])
        }
        let metrics: [JSONValue] = metrics.map { m in
            var o: [String: JSONValue] = [
                "name": .string(m.name), "a": .number(m.a), "b": .number(m.b), "difference": .number(m.difference),
                "ci95": m.ci95.map { .array([.double($0.0), .double($0.1)]) } ?? .null, "p_value": .number(m.pValue),
                "pairs": .int(m.pairs), "kind": .string(m.isFlag ? "rate" : "mean"),
                "test": .string(m.isFlag ? "McNemar exact" : "sign-flip permutation over inputs"),
            ]
            if let x = m.onlyA, let y = m.onlyB {
                o["only_a"] = .int(x)
                o["only_b"] = .int(y)
            }
            return .object(o)
        }
        return .object([
            "a": side(a), "b": side(b), "paired": .int(pairs.count),
            "unpaired": .int(unpaired.values.reduce(0, +)),
            "unpaired_reasons": .object(unpaired.mapValues { .int($0) }), "metrics": .array(metrics),
            "inputs": .array(
                inputs.map {
                    .object([
                        "input": .string($0.input), "input_sha256": .string($0.inputSHA256), "a": stats($0.a),
                        "b": stats($0.b),
                    ])
                }),
            "bootstrap": .object([
                "resamples": .int(options.resamples), "seed": .string("\(options.seed)"),
            ]),
        ])
    }
}
