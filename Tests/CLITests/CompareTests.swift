import AuditStore
import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// `varaudit compare` on two tiny pipelines (tiny-a and a copy whose UNet weights were changed) audited on the
/// same inputs: every number of `--json` is recomputed here from `query --json` of each run.
@Suite(.serialized)
struct CompareTests {
    /// tiny-a with every UNet `conv_out` weight scaled: a "second checkpoint" of the same architecture.
    static func modelB(in dir: URL) throws -> URL {
        let root = try Fixtures.pipelineCopy(at: dir.appendingPathComponent("model-b"), replacing: "unet")
        let unet = root.appendingPathComponent("unet")
        try FileManager.default.copyItem(
            at: Fixtures.url("pipeline/tiny-a/unet/config.json"), to: unet.appendingPathComponent("config.json"))
        var tensors = try SafeTensorsFile(
            url: Fixtures.url("pipeline/tiny-a/unet/diffusion_pytorch_model.safetensors")
        ).loadAll()
        for (key, t) in tensors where key.hasPrefix("conv_out.") || key.hasPrefix("conv_in.") {
            tensors[key] = map(t) { $0 * 1.6 }
        }
        try SafeTensorsWriter.write(tensors, to: unet.appendingPathComponent("diffusion_pytorch_model.safetensors"))
        return root
    }

    static func audit(_ model: URL, db: URL, steps: Int = 4, inputs: [String]? = nil, extra: [String] = [])
        throws -> ToolRun
    {
        let given = (inputs ?? ["chelsea.png", "coffee.png", "rocket.jpg"]).flatMap {
            ["--input", Fixtures.url("photos/\($0)").path]
        }
        // 0.265 lies between the cosines of chelsea #0 to its input under the two checkpoints (0.2735 and
        // 0.2557), so the reproduction flag differs between them at least there.
        return try Fixtures.runTool(
            [
                "audit", "--model", model.path, "--variations", "3", "--steps", "\(steps)", "--seed", "7", "--db",
                db.path,
                "--reproduction-threshold", "0.265",
            ] + given + extra)
    }

    static func json(_ run: ToolRun) throws -> Any {
        #expect(run.status == 0, "\(run.stderr)")
        return try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
    }

    @Test func everyNumberIsRecomputedFromTheQueries() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.sqlite")
        let b = dir.appendingPathComponent("b.sqlite")
        // A training "index": 64 random unit vectors in the encoder's 24 dimensions (searched exactly).
        var rng = SplitMix64(seed: 11)
        var train = try Tensor(shape: [64, 24], values: (0..<(64 * 24)).map { _ in rng.gaussian() })
        l2NormalizeRows(&train)
        let index = dir.appendingPathComponent("train.npy")
        try NPY.write(train, to: index)
        #expect(try Self.audit(Fixtures.url("pipeline/tiny-a"), db: a, extra: ["--index", index.path]).status == 0)
        #expect(try Self.audit(Self.modelB(in: dir), db: b, extra: ["--index", index.path]).status == 0)
        let run = try Fixtures.runTool(
            [
                "compare", "--db", a.path, "--db-b", b.path, "--run", "1", "--run", "1", "--json", "--resamples", "500",
                "--seed", "3",
            ])
        let result = try #require(try Self.json(run) as? [String: Any])
        let rowsA = try #require(
            try Self.json(Fixtures.runTool(["query", "--db", a.path, "--json"])) as? [[String: Any]])
        let rowsB = try #require(
            try Self.json(Fixtures.runTool(["query", "--db", b.path, "--json"])) as? [[String: Any]])

        func key(_ r: [String: Any]) -> String {
            "\(r["input_sha256"] as? String ?? "")#\(r["variation"] as? Int ?? -1)#\(r["seed"] as? Int ?? -1)"
        }
        let byKeyB = Dictionary(rowsB.map { (key($0), $0) }, uniquingKeysWith: { x, _ in x })
        let pairs = rowsA.compactMap { r in byKeyB[key(r)].map { (r, $0) } }
        #expect(pairs.count == 9)
        #expect(result["paired"] as? Int == 9)
        #expect(result["unpaired"] as? Int == 0)

        func value(_ name: String, _ r: [String: Any]) -> Double? {
            let memorization = r["memorization"] as? [String: Any]
            switch name {
            case "memorization_score": return memorization?["score"] as? Double
            case "input_similarity": return memorization?["input_similarity"] as? Double
            case "max_concept_margin":
                let concepts = (r["safety"] as? [String: Any])?["concepts"] as? [[String: Any]] ?? []
                return concepts.compactMap { $0["score"] as? Double }.max()
            default: return (r["flags"] as? [String] ?? []).contains(name) ? 1 : 0
            }
        }
        let metrics = try #require(result["metrics"] as? [[String: Any]])
        #expect(
            metrics.compactMap { $0["name"] as? String } == [
                "memorized", "reproduces-input", "unsafe", "memorization_score", "input_similarity",
                "max_concept_margin",
            ])
        for m in metrics {
            let name = m["name"] as? String ?? ""
            // Per input, sorted by SHA-256, the pairs where both runs have a value.
            let grouped = Dictionary(grouping: pairs, by: { $0.0["input_sha256"] as? String ?? "" })
            let groups: [[(Double, Double)]] = grouped.keys.sorted().compactMap { sha in
                let v = grouped[sha]!.compactMap { p -> (Double, Double)? in
                    guard let x = value(name, p.0), let y = value(name, p.1) else { return nil }
                    return (x, y)
                }
                return v.isEmpty ? nil : v
            }
            let all = groups.flatMap { $0 }
            #expect(m["pairs"] as? Int == all.count, "\(name)")
            if all.isEmpty {
                #expect(m["a"] is NSNull && m["difference"] is NSNull, "\(name)")
                continue
            }
            let meanA = all.map(\.0).reduce(0, +) / Double(all.count)
            let meanB = all.map(\.1).reduce(0, +) / Double(all.count)
            #expect(abs((m["a"] as? Double ?? -9) - meanA) < 1e-12, "\(name)")
            #expect(abs((m["b"] as? Double ?? -9) - meanB) < 1e-12, "\(name)")
            #expect(abs((m["difference"] as? Double ?? -9) - (meanB - meanA)) < 1e-12, "\(name)")
            // The bootstrap over inputs, recomputed: SplitMix64(seed), index next() % n, numpy's linear percentile.
            var rng = SplitMix64(seed: 3)
            var stats: [Double] = []
            for _ in 0..<500 {
                var total = 0.0
                var count = 0.0
                for _ in 0..<groups.count {
                    let g = groups[Int(rng.next() % UInt64(groups.count))]
                    total += g.map { $0.1 - $0.0 }.reduce(0, +)
                    count += Double(g.count)
                }
                stats.append(total / count)
            }
            stats.sort()
            func pct(_ q: Double) -> Double {
                let pos = q * Double(stats.count - 1)
                let lo = Int(pos)
                let hi = min(lo + 1, stats.count - 1)
                return stats[lo] + (stats[hi] - stats[lo]) * (pos - Double(lo))
            }
            let ci = m["ci95"] as? [Double] ?? []
            #expect(ci.count == 2 && abs(ci[0] - pct(0.025)) < 1e-12 && abs(ci[1] - pct(0.975)) < 1e-12, "\(name)")
            if ["memorized", "reproduces-input", "unsafe"].contains(name) {
                // McNemar's exact test, from the binomial distribution directly.
                let onlyA = all.filter { $0.0 == 1 && $0.1 == 0 }.count
                let onlyB = all.filter { $0.0 == 0 && $0.1 == 1 }.count
                let n = onlyA + onlyB
                var tail = 0.0
                if n > 0 {
                    for i in 0...min(onlyA, onlyB) {
                        tail += (0..<i).reduce(1.0) { $0 * Double(n - $1) / Double($1 + 1) } / pow(2, Double(n))
                    }
                }
                let p = n == 0 ? 1 : min(1, 2 * tail)
                #expect(abs((m["p_value"] as? Double ?? -9) - p) < 1e-9, "\(name)")
            } else {
                let d = groups.map { g in g.map { $0.1 - $0.0 }.reduce(0, +) }
                let observed = abs(d.reduce(0, +))
                var flips = SplitMix64(seed: 3 ^ 0x9E37_79B9_7F4A_7C15)
                var extreme = 0
                for _ in 0..<500 {
                    var s = 0.0
                    for x in d { s += flips.next() & 1 == 1 ? -x : x }
                    if abs(s) >= observed - 1e-12 { extreme += 1 }
                }
                #expect(abs((m["p_value"] as? Double ?? -9) - Double(extreme + 1) / 501) < 1e-12, "\(name)")
            }
        }
        // The reproduction flags differ between the two checkpoints somewhere, so the test is not vacuous.
        let reproduces = try #require(metrics.first { $0["name"] as? String == "reproduces-input" })
        #expect((reproduces["only_a"] as? Int ?? 0) + (reproduces["only_b"] as? Int ?? 0) > 0)

        let memorization = try #require(metrics.first { $0["name"] as? String == "memorization_score" })
        #expect(memorization["pairs"] as? Int == 9)

        // The comparison report renders in a browser: both rows of every input, the inputs that changed most.
        let reportDir = dir.appendingPathComponent("report")
        let report = try Fixtures.runTool(
            ["report", "--db", a.path, "--compare", "1", "--db-b", b.path, "--out", reportDir.path])
        #expect(report.status == 0, "\(report.stderr)")
        let (dom, console) = try Browser.render(reportDir.appendingPathComponent("index.html"))
        #expect(console.isEmpty, "\(console)")
        #expect(dom.contains("data-visible-cards=\"18\""))
        #expect(dom.contains("Inputs that changed most"))
        #expect(dom.contains("A (run 1) against B (run 1"))

        // Per input: counts and means of each run.
        let inputs = try #require(result["inputs"] as? [[String: Any]])
        #expect(inputs.count == 3)
        for entry in inputs {
            let sha = entry["input_sha256"] as? String ?? ""
            for (side, rows) in [("a", rowsA), ("b", rowsB)] {
                let mine = rows.filter { $0["input_sha256"] as? String == sha }
                let s = entry[side] as? [String: Any] ?? [:]
                #expect(s["variations"] as? Int == mine.count)
                let flagged = mine.filter { ($0["flags"] as? [String] ?? []).contains("reproduces-input") }.count
                #expect(s["reproduces_input"] as? Int == flagged)
                let sims = mine.compactMap { value("input_similarity", $0) }
                #expect(abs((s["input_similarity"] as? Double ?? -9) - sims.reduce(0, +) / Double(sims.count)) < 1e-12)
            }
        }
    }

    @Test func mcNemarMatchesHandComputedBinomials() {
        // b = 1, c = 5: 2 · (C(6,0) + C(6,1)) / 2⁶ = 14/64.
        #expect(abs(RunComparison.mcNemarExact(onlyA: 1, onlyB: 5) - 0.21875) < 1e-12)
        // b = 0, c = 4: 2 · 1/16.
        #expect(abs(RunComparison.mcNemarExact(onlyA: 0, onlyB: 4) - 0.125) < 1e-12)
        // b = 2, c = 8: 2 · (1 + 10 + 45) / 1024.
        #expect(abs(RunComparison.mcNemarExact(onlyA: 2, onlyB: 8) - 112.0 / 1024) < 1e-12)
        #expect(RunComparison.mcNemarExact(onlyA: 3, onlyB: 3) == 1)
        #expect(RunComparison.mcNemarExact(onlyA: 0, onlyB: 0) == 1)
    }

    @Test func runsWithOtherStepsOrInputsAreRefusedNamingTheDifference() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("a.sqlite")
        let model = Fixtures.url("pipeline/tiny-a")
        #expect(try Self.audit(model, db: db, steps: 3, inputs: ["coffee.png"]).status == 0)
        #expect(try Self.audit(model, db: db, steps: 4, inputs: ["coffee.png"], extra: ["--new-run"]).status == 0)
        #expect(try Self.audit(model, db: db, steps: 3, inputs: ["rocket.jpg"], extra: ["--new-run"]).status == 0)
        let steps = try Fixtures.runTool(["compare", "--db", db.path, "--run", "1", "--run", "2"])
        #expect(steps.status == 1)
        #expect(steps.stderr.contains("steps: 3 in A, 4 in B"), "\(steps.stderr)")
        let inputs = try Fixtures.runTool(["compare", "--db", db.path, "--run", "1", "--run", "3"])
        #expect(inputs.status == 1)
        #expect(
            inputs.stderr.contains("inputs: 1 only in A (coffee.png), 1 only in B (rocket.jpg)"), "\(inputs.stderr)")
        // Allowed on request: nothing pairs, and the reason is given.
        let allowed = try Fixtures.runTool(
            ["compare", "--db", db.path, "--run", "1", "--run", "3", "--allow-different-parameters", "--json"])
        let result = try #require(try Self.json(allowed) as? [String: Any])
        #expect(result["paired"] as? Int == 0)
        #expect((result["unpaired_reasons"] as? [String: Int])?["different inputs"] == 6)
    }
}
