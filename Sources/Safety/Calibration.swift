import Foundation
import Tensors

/// A labelled example for calibration: an image embedding, and for a positive the concept it shows (`nil`:
/// positive for every concept).
public struct LabelledEmbedding: Sendable {
    public var embedding: [Float]
    public var concept: String?
    public var label: String?

    public init(embedding: [Float], concept: String? = nil, label: String? = nil) {
        self.embedding = embedding
        self.concept = concept
        self.label = label
    }
}

/// Precision, recall, false-positive rate and ROC AUC of one decision rule on a labelled set.
public struct DetectionMetrics: Sendable, Equatable {
    public var positives: Int
    public var negatives: Int
    public var truePositives: Int
    public var falsePositives: Int
    /// Area under the ROC curve of the continuous score (ties count one half); `nil` without both classes.
    public var rocAUC: Double?

    public var precision: Double? {
        truePositives + falsePositives > 0 ? Double(truePositives) / Double(truePositives + falsePositives) : nil
    }
    public var recall: Double? { positives > 0 ? Double(truePositives) / Double(positives) : nil }
    public var falsePositiveRate: Double? { negatives > 0 ? Double(falsePositives) / Double(negatives) : nil }

    /// Metrics of "flag when score > threshold" (`flagged` decides) with `auc` of the raw scores.
    init(positiveScores: [Float], negativeScores: [Float], flaggedPositives: Int, flaggedNegatives: Int) {
        positives = positiveScores.count
        negatives = negativeScores.count
        truePositives = flaggedPositives
        falsePositives = flaggedNegatives
        rocAUC = Self.auc(positives: positiveScores, negatives: negativeScores)
    }

    /// Mann–Whitney estimate of P(score(pos) > score(neg)) + ½ P(equal).
    static func auc(positives: [Float], negatives: [Float]) -> Double? {
        guard !positives.isEmpty, !negatives.isEmpty else { return nil }
        let neg = negatives.sorted()
        var total = 0.0
        for p in positives {
            // count of negatives < p and == p by binary search
            var lo = 0
            var hi = neg.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if neg[mid] < p { lo = mid + 1 } else { hi = mid }
            }
            var eq = lo
            while eq < neg.count, neg[eq] == p { eq += 1 }
            total += Double(lo) + 0.5 * Double(eq - lo)
        }
        return total / Double(positives.count * negatives.count)
    }
}

/// The calibration of one concept.
public struct ConceptCalibration: Sendable {
    public var name: String
    public var kind: ConceptKind
    public var oldThreshold: Float
    public var newThreshold: Float
    /// Metrics of the concept alone at `newThreshold` (score = cosine similarity; flagged when the checker's
    /// rounded score `round(cos − threshold, 3) > 0`, without the special-care adjustment).
    public var metrics: DetectionMetrics
}

/// The result of `ThresholdCalibrator.calibrate`.
public struct CalibrationReport: Sendable {
    /// Enabled concepts, in set order.
    public var concepts: [ConceptCalibration]
    /// The whole checker with the new thresholds: an image is positive when it is in the positives, flagged
    /// when the checker's verdict is; AUC from the largest margin over concepts.
    public var overall: DetectionMetrics
    /// The set with the new thresholds.
    public var calibrated: ConceptSet
}

/// Picks per-concept thresholds from labelled image embeddings.
///
/// For each enabled concept the scores are the cosine similarities of its positives (the positives labelled
/// with its name, or every positive when none is) and of all negatives. With a target false-positive rate
/// `F` the threshold is the smallest that flags at most `⌊F · negatives⌋` negatives: the
/// `(⌊F·n⌋+1)`-th highest negative similarity (ties can only lower the rate). Without one it maximizes
/// Youden's J = TPR − FPR, placed halfway between the two neighbouring similarities that separate best
/// (the widest such gap on a tie). The checker flags `round(cos − t, 3) > 0`, i.e. `cos − t ≥ 0.0005`.
public enum ThresholdCalibrator {
    public static func calibrate(
        set: ConceptSet, positives: [LabelledEmbedding], negatives: [[Float]], targetFPR: Double? = nil
    ) throws -> CalibrationReport {
        if let f = targetFPR, !(f >= 0 && f <= 1) {
            throw SafetyError("--target-fpr must be in [0, 1], got \(f)")
        }
        guard !positives.isEmpty || !negatives.isEmpty else { throw SafetyError("no calibration images") }
        let names = Set(set.concepts.map(\.name))
        for p in positives {
            if let c = p.concept, !names.contains(c) {
                throw SafetyError(file: set.source, concept: c, "positives labelled with a concept the set lacks")
            }
        }
        let negUnits = negatives.map(l2Normalized)
        let posUnits = positives.map { l2Normalized($0.embedding) }
        var calibrated = set
        var results: [ConceptCalibration] = []
        for (i, c) in set.concepts.enumerated() where c.enabled {
            let unit = l2Normalized(c.embedding)
            let labelled = positives.indices.filter { positives[$0].concept == c.name }
            let mine = labelled.isEmpty ? positives.indices.filter { positives[$0].concept == nil } : labelled
            let pos = mine.map { ConceptScorer.dot(posUnits[$0], unit) }
            let neg = negUnits.map { ConceptScorer.dot($0, unit) }
            let t = threshold(positives: pos, negatives: neg, targetFPR: targetFPR) ?? c.threshold
            calibrated.concepts[i].threshold = t
            func fires(_ s: Float) -> Bool { ConceptScorer.score(similarity: s, threshold: t, adjustment: 0) > 0 }
            results.append(
                ConceptCalibration(
                    name: c.name, kind: c.kind, oldThreshold: c.threshold, newThreshold: t,
                    metrics: DetectionMetrics(
                        positiveScores: pos, negativeScores: neg, flaggedPositives: pos.filter(fires).count,
                        flaggedNegatives: neg.filter(fires).count)))
        }
        let scorer = try ConceptScorer(set: calibrated)
        var posMargins: [Float] = []
        var negMargins: [Float] = []
        var tp = 0
        var fp = 0
        for p in positives {
            posMargins.append(try scorer.margin(embedding: p.embedding))
            if try scorer.verdict(embedding: p.embedding).flagged { tp += 1 }
        }
        for n in negatives {
            negMargins.append(try scorer.margin(embedding: n))
            if try scorer.verdict(embedding: n).flagged { fp += 1 }
        }
        let overall = DetectionMetrics(
            positiveScores: posMargins, negativeScores: negMargins, flaggedPositives: tp, flaggedNegatives: fp)
        return CalibrationReport(concepts: results, overall: overall, calibrated: calibrated)
    }

    /// The threshold for one concept (see the type's documentation); `nil` when there is nothing to go by.
    public static func threshold(positives: [Float], negatives: [Float], targetFPR: Double?) -> Float? {
        let neg = negatives.sorted(by: >)
        if let f = targetFPR {
            guard !neg.isEmpty else { return nil }
            let allowed = Int((f * Double(neg.count)).rounded(.down))
            if allowed >= neg.count { return (positives + neg).min().map { $0 - 0.001 } }
            return neg[allowed]
        }
        guard !positives.isEmpty, !neg.isEmpty else { return nil }
        let all = Array(Set(positives + negatives)).sorted()
        // Candidate cut below each distinct value, and above the largest.
        var best: (j: Double, gap: Float, t: Float)?
        let posSorted = positives.sorted()
        let negSorted = negatives.sorted()
        func countAbove(_ xs: [Float], _ t: Float) -> Int {
            var lo = 0
            var hi = xs.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if xs[mid] <= t { lo = mid + 1 } else { hi = mid }
            }
            return xs.count - lo
        }
        for k in 0..<all.count {
            // Cut between all[k] and all[k+1] (or just above the largest value).
            let low = all[k]
            let high = k + 1 < all.count ? all[k + 1] : low + 0.002
            let t = (low + high) / 2
            let j =
                Double(countAbove(posSorted, low)) / Double(positives.count)
                - Double(countAbove(negSorted, low)) / Double(negatives.count)
            let gap = high - low
            if best == nil || j > best!.j || (j == best!.j && gap > best!.gap) { best = (j, gap, t) }
        }
        // A cut below the smallest value flags everything: J = 0, never better than the ones above.
        return best?.t
    }
}
