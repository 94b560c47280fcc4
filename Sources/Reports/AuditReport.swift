import AuditStore
import Checkpoints
import Crypto
import Foundation
import Mustache

/// The HTML audit report of one run: `DIR/index.html` with thumbnails in `DIR/thumbs/`, the full images linked
/// where the audit stored them. Everything that comes from files, metadata or captions goes through the template
/// engine's escaping (`{{...}}`); the only raw markup is ours (the SVG histograms, built from numbers, and the
/// script, allowed by its hash in the page's Content-Security-Policy). The page makes no network request.
public struct AuditReport {
    /// Longest side of a thumbnail, in pixels. Default 192.
    public var thumbnailSize = 192
    /// Concept scores shown per variation before "more" (the flagged ones always). Default 5.
    public var conceptsShown = 5

    public init() {}

    /// Writes the report of run `run` (default: the latest) of `store` into `directory`; returns `index.html`.
    /// With `comparison` (run A = `run`), the page sets run B beside it: both columns and the differences in
    /// the summary, A's and B's variations in two rows per input, and the inputs whose memorization score rose
    /// most first.
    @discardableResult
    public func write(
        store: AuditStore, run: Int64? = nil, comparison: (store: AuditStore, comparison: RunComparison)? = nil,
        to directory: URL
    ) throws -> URL {
        let record = try store.run(run)
        let runID = record.id!
        let dir = directory.standardizedFileURL
        let thumbs = dir.appendingPathComponent("thumbs", isDirectory: true)
        try FileManager.default.createDirectory(at: thumbs, withIntermediateDirectories: true)
        let summary = try store.summary(of: record)
        let results = try store.variations(VariationQuery(run: runID, sort: .input))
        let inputs = try store.inputs(run: runID)
        let errors = try store.errors(run: runID)
        let controls = try store.controls(run: runID)
        let parameters = JSONValue.parse(record.parameters)?.objectValue ?? [:]
        let detectors = JSONValue.parse(record.detectors)?.objectValue ?? [:]
        let memorizationThreshold = parameters["memorization_threshold"]?.doubleValue ?? 0.95
        let reproductionThreshold = parameters["reproduction_threshold"]?.doubleValue ?? 0.95

        func thumb(_ path: String, sha: String?) -> String? {
            let name = (sha.map { String($0.prefix(24)) } ?? Self.pathKey(path)) + ".jpg"
            let target = thumbs.appendingPathComponent(name)
            return ReportSupport.thumbnail(of: path, to: target, size: thumbnailSize) ? "thumbs/\(name)" : nil
        }
        func neighborContext(_ n: NeighborRecord?) -> [String: Any]? {
            guard let n else { return nil }
            let meta = n.metadata.flatMap { JSONValue.parse($0)?.objectValue } ?? [:]
            let caption = meta["caption"]?.stringValue ?? meta["text"]?.stringValue
            let url = meta["url"]?.stringValue
            let path = meta["path"]?.stringValue ?? meta["image_path"]?.stringValue
            var c: [String: Any] = ["row": "\(n.rowID)", "cosine": ReportSupport.fixed(n.cosine)]
            if let caption { c["caption"] = caption }
            if let url {
                c["url"] = url
                if let safe = ReportSupport.safeWebURL(url) { c["href"] = safe }
            }
            if let path {
                c["path"] = path
                if FileManager.default.fileExists(atPath: path), let t = thumb(path, sha: nil) {
                    c["thumb"] = t
                    c["full"] = ReportSupport.relativeLink(to: path, from: dir)
                }
            }
            return c
        }
        func conceptContexts(_ scores: [ConceptScoreRecord]) -> (shown: [[String: Any]], more: [[String: Any]]) {
            let sorted = scores.sorted {
                $0.flagged != $1.flagged
                    ? $0.flagged
                    : ($0.score != $1.score
                        ? $0.score > $1.score
                        : $0.similarity - $0.threshold > $1.similarity - $1.threshold)
            }
            let all = sorted.map { s -> [String: Any] in
                [
                    "name": s.name, "kind": s.kind, "score": String(format: "%+.3f", s.score),
                    "similarity": ReportSupport.fixed(s.similarity), "threshold": ReportSupport.fixed(s.threshold),
                    "flagged": s.flagged,
                ]
            }
            let keep = max(conceptsShown, sorted.filter(\.flagged).count)
            return (Array(all.prefix(keep)), Array(all.dropFirst(keep)))
        }

        func card(_ r: VariationResult, input n: Int) -> [String: Any] {
            let v = r.variation
            let (shown, more) = conceptContexts(r.concepts)
            var card: [String: Any] = [
                "k": "\(v.k)", "image": ReportSupport.relativeLink(to: v.imagePath, from: dir),
                "flags": r.flags.map { ["flag": $0] }, "flagList": r.flags.joined(separator: " "),
                "unsafe": r.flags.contains("unsafe"), "memorization": ReportSupport.fixed(v.memorizationScore),
                "memorizationSort": v.memorizationScore.map { "\($0)" } ?? "-2",
                "inputSimilarity": ReportSupport.fixed(v.inputSimilarity),
                "similaritySort": v.inputSimilarity.map { "\($0)" } ?? "-2",
                "safetySort": r.maxConceptScore.map { "\($0)" } ?? "-9", "concepts": shown,
                "moreConcepts": more, "hasMore": !more.isEmpty, "hasConcepts": !r.concepts.isEmpty,
                "input": "\(n)", "seed": "\(v.seed)",
                "size": "\(v.width)×\(v.height)",
            ]
            if let t = thumb(v.imagePath, sha: v.imageSHA256) { card["thumb"] = t }
            if let nb = neighborContext(r.neighbors.first) { card["neighbor"] = nb }
            return card
        }

        var byInput: [Int64: [VariationResult]] = [:]
        for r in results { byInput[r.input.id!, default: []].append(r) }
        // Run B's variations by input content (its files may live elsewhere).
        var bySHA: [String: [VariationResult]] = [:]
        var changes: [String: Double] = [:]
        if let comparison {
            for r in try comparison.store.variations(VariationQuery(run: comparison.comparison.b.run.id)) {
                bySHA[r.input.sha256, default: []].append(r)
            }
            for i in comparison.comparison.inputs {
                if let x = i.a.memorizationScore, let y = i.b.memorizationScore { changes[i.inputSHA256] = y - x }
            }
        }
        var sections: [[String: Any]] = []
        for (n, input) in inputs.enumerated() {
            let details = try store.inputDetails(input.id!)
            let name = (input.path as NSString).lastPathComponent
            let (shownConcepts, moreConcepts) = conceptContexts(details.concepts)
            let cards = (byInput[input.id!] ?? []).map { card($0, input: n) }
            var rows: [[String: Any]] = [["cards": cards]]
            if let comparison {
                let c = comparison.comparison
                rows = [
                    ["label": "A · run \(c.a.run.id ?? 0) · \(c.a.run.model)", "cards": cards],
                    [
                        "label": "B · run \(c.b.run.id ?? 0) · \(c.b.run.model)",
                        "cards": (bySHA[input.sha256] ?? []).map { card($0, input: n) },
                    ],
                ]
            }
            var section: [String: Any] = [
                "index": "\(n)", "name": name, "path": input.path, "sha": String(input.sha256.prefix(16)),
                "full": ReportSupport.relativeLink(to: input.path, from: dir), "rows": rows,
                "count": "\(cards.count)", "size": "\(input.width)×\(input.height)",
                "flags": details.flags.map { ["flag": $0] }, "unsafe": details.flags.contains("unsafe"),
                "memorization": ReportSupport.fixed(input.memorizationScore), "concepts": shownConcepts,
                "moreConcepts": moreConcepts, "hasMore": !moreConcepts.isEmpty,
                "hasConcepts": !details.concepts.isEmpty,
            ]
            if let change = changes[input.sha256] {
                section["change"] = String(format: "%+.4f", change)
            }
            if let t = thumb(input.path, sha: input.sha256) { section["thumb"] = t }
            if let nb = neighborContext(details.neighbors.first) { section["neighbor"] = nb }
            sections.append(section)
        }

        // Summary tables.
        func show(_ v: JSONValue) -> String {
            switch v {
            case .string(let s): return s
            case .null: return "–"
            default: return (try? v.text(pretty: false)) ?? ""
            }
        }
        let parameterRows = parameters.sorted { $0.key < $1.key }.map { ["name": $0.key, "value": show($0.value)] }
        let weightRows = (JSONValue.parse(record.weights)?.objectValue ?? [:]).sorted { $0.key < $1.key }.map {
            (name, value) -> [String: Any] in
            let o = value.objectValue ?? [:]
            return [
                "name": name, "file": o["file"]?.stringValue ?? "", "sha": o["sha256"]?.stringValue ?? "",
                "bytes": o["bytes"].map(show) ?? "",
            ]
        }
        let detectorRows = detectors.sorted { $0.key < $1.key }.map { (name, value) -> [String: Any] in
            let o = value.objectValue ?? [:]
            return [
                "name": name, "used": o["used"] == .bool(true), "detail": o["detail"]?.stringValue ?? "",
            ]
        }
        var recall = "–"
        if let r = detectors["memorization"]?.objectValue?["recall_at_10"]?.doubleValue {
            recall = String(format: "%.4f", r)
        } else if detectors["memorization"]?.objectValue?["used"] == .bool(true) {
            recall = "not measured"
        }
        var controlRows: [[String: Any]] = []
        for detector in ["memorization", "safety"] {
            for subject in ["input", "variation"] {
                let mine = controls.filter {
                    $0.control.detector == detector && ($0.control.k == nil) == (subject == "input") && $0.audited
                }
                if mine.isEmpty { continue }
                let found = mine.filter(\.found).count
                controlRows.append([
                    "detector": detector, "subject": subject == "input" ? "inputs" : "variations",
                    "planted": "\(mine.count)", "found": "\(found)",
                    "share": ReportSupport.percent(found, of: mine.count), "all": found == mine.count,
                    "missed": mine.filter { !$0.found }.map {
                        [
                            "what": (($0.control.input as NSString).lastPathComponent)
                                + ($0.control.k.map { " #\($0)" } ?? "") + ": " + $0.control.description
                        ]
                    },
                ])
            }
        }
        let memorizationValues = results.compactMap(\.variation.memorizationScore)
        let similarityValues = results.compactMap(\.variation.inputSimilarity)
        let histograms = [
            memorizationValues.isEmpty
                ? nil
                : ReportSupport.histogram(
                    memorizationValues, lo: min(0, memorizationValues.min() ?? 0), hi: 1,
                    thresholds: [("memorized", memorizationThreshold)],
                    title: "Memorization score (cosine to the nearest training image)"),
            similarityValues.isEmpty
                ? nil
                : ReportSupport.histogram(
                    similarityValues, lo: min(0, similarityValues.min() ?? 0), hi: 1,
                    thresholds: [("reproduces input", reproductionThreshold)], title: "Cosine to the input"),
        ].compactMap { $0 }

        let script = ReportTemplate.script
        let scriptHash = Data(SHA256.hash(data: Data(script.utf8))).base64EncodedString()
        var context: [String: Any] = [
            "run": "\(runID)", "status": record.status, "model": record.model, "started": record.startedAt,
            "finished": record.finishedAt ?? "–", "seconds": ReportSupport.duration(record.seconds),
            "toolVersion": record.toolVersion,
            "inputs": "\(summary.inputs)", "variations": "\(summary.variations)",
            "expected": "\(summary.expectedVariations)", "errorsCount": "\(summary.errors)",
            "unsafe": "\(summary.unsafe)", "anyUnsafe": summary.unsafe > 0, "anyMemorized": summary.memorized > 0,
            "anyReproduces": summary.reproducesInput > 0,
            "unsafePct": ReportSupport.percent(summary.unsafe, of: summary.variations),
            "memorized": "\(summary.memorized)",
            "memorizedPct": ReportSupport.percent(summary.memorized, of: summary.variations),
            "reproduces": "\(summary.reproducesInput)",
            "reproducesPct": ReportSupport.percent(summary.reproducesInput, of: summary.variations),
            "unsafeInputs": "\(summary.unsafeInputs)", "memorizedInputs": "\(summary.memorizedInputs)",
            "parameters": parameterRows, "weights": weightRows, "detectors": detectorRows, "recall": recall,
            "controls": controlRows, "hasControls": !controlRows.isEmpty, "histograms": histograms,
            "errors": errors.map { ["input": $0.input, "stage": $0.stage, "message": $0.message] },
            "hasErrors": !errors.isEmpty, "sections": sections,
            "inputOptions": sections.map { ["index": $0["index"]!, "name": $0["name"]!] },
            "script": script, "scriptHash": scriptHash, "style": ReportTemplate.style,
            "generated": ISO8601DateFormatter().string(from: Date()),
        ]
        if let comparison {
            let c = comparison.comparison
            func f(_ d: Double?, _ rate: Bool) -> String {
                guard let d else { return "–" }
                return rate ? String(format: "%.1f%%", d * 100) : String(format: "%.4f", d)
            }
            context["compare"] =
                [
                    "runB": "\(c.b.run.id ?? 0)", "modelB": c.b.run.model, "dbB": c.b.database,
                    "paired": "\(c.pairs.count)", "unpaired": "\(c.unpaired.values.reduce(0, +))",
                    "weightsB": (JSONValue.parse(c.b.run.weights)?.objectValue ?? [:]).sorted { $0.key < $1.key }.map {
                        ["name": $0.key, "sha": $0.value.objectValue?["sha256"]?.stringValue ?? ""]
                    },
                    "metrics": c.metrics.map { m -> [String: Any] in
                        [
                            "name": m.name, "a": f(m.a, m.isFlag), "b": f(m.b, m.isFlag),
                            "difference": f(m.difference, m.isFlag),
                            "ci": m.ci95.map { "[\(f($0.0, m.isFlag)), \(f($0.1, m.isFlag))]" } ?? "–",
                            "p": m.pValue.map { String(format: "%.3g", $0) } ?? "–",
                            "rise": (m.difference ?? 0) > 0 && (m.ci95?.0 ?? 0) > 0,
                        ]
                    },
                ] as [String: Any]
            // `sections` were built from `inputs` in order.
            let risers = zip(inputs, sections).compactMap { input, section in
                changes[input.sha256].map { ($0, section) }
            }.sorted { $0.0 > $1.0 }.prefix(10)
            context["changed"] = risers.map { change, section in
                [
                    "index": section["index"] ?? "", "name": section["name"] ?? "",
                    "change": String(format: "%+.4f", change),
                ]
            }
            context["hasChanged"] = !risers.isEmpty
            context["title"] = "Comparison · run \(runID) vs run \(c.b.run.id ?? 0)"
        }
        if let shard = record.shardIndex { context["shard"] = "\(shard)/\(record.shardCount ?? 0)" }
        let template = try MustacheTemplate(string: ReportTemplate.page)
        let html = template.render(context)
        let index = dir.appendingPathComponent("index.html")
        try AtomicFile.write(Data(html.utf8), to: index)
        return index
    }

    /// A file-name-safe key for a path (its SHA-256 prefix).
    static func pathKey(_ path: String) -> String {
        SHA256.hash(data: Data(path.utf8)).prefix(12).map { String(format: "%02x", $0) }.joined()
    }
}
