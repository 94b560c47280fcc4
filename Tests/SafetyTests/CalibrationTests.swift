import Safety
import Testing

/// Threshold calibration on constructed labelled sets whose right thresholds are known.
struct CalibrationTests {
    /// A unit 2-D vector whose cosine with [1, 0] is `c`.
    func at(_ c: Float) -> [Float] { [c, (1 - c * c).squareRoot()] }

    let set = ConceptSet(
        name: "cal",
        concepts: [
            Concept(name: "east", kind: .concept, threshold: 0.99, embedding: [1, 0]),
            Concept(name: "south", kind: .concept, threshold: 0.99, embedding: [0, -1]),
        ])

    @Test func separableSetGetsTheMidpoint() throws {
        // "east" positives have cosine 0.7–0.8 with east, negatives 0.1–0.5: the best cut is halfway, 0.6.
        let positives = [0.7, 0.75, 0.8].map { LabelledEmbedding(embedding: at(Float($0)), concept: "east") }
        let negatives = [0.1, 0.3, 0.5].map { at(Float($0)) }
        let report = try ThresholdCalibrator.calibrate(set: set, positives: positives, negatives: negatives)
        let east = try #require(report.concepts.first { $0.name == "east" })
        #expect(abs(east.newThreshold - 0.6) < 1e-6)
        #expect(east.oldThreshold == 0.99)
        #expect(east.metrics.recall == 1 && east.metrics.precision == 1 && east.metrics.falsePositiveRate == 0)
        #expect(east.metrics.rocAUC == 1)
        #expect(report.calibrated.concepts[0].threshold == east.newThreshold)
        // "south" has no labelled positives and no unlabelled ones: its threshold is kept.
        let south = try #require(report.concepts.first { $0.name == "south" })
        #expect(south.newThreshold == 0.99)
        #expect(report.overall.truePositives == 3 && report.overall.falsePositives == 0)
        #expect(report.overall.rocAUC == 1)
    }

    @Test func targetFalsePositiveRatePicksTheNegativeQuantile() throws {
        let positives = [0.6, 0.9].map { LabelledEmbedding(embedding: at(Float($0))) }  // unlabelled: every concept
        let negatives = [0.1, 0.2, 0.4, 0.7].map { at(Float($0)) }
        // 25 % of 4 negatives: one may fire, so the threshold is the second highest negative, 0.4.
        let report = try ThresholdCalibrator.calibrate(
            set: set, positives: positives, negatives: negatives, targetFPR: 0.25)
        let east = report.concepts[0]
        #expect(abs(east.newThreshold - 0.4) < 1e-6)
        #expect(east.metrics.falsePositives == 1 && east.metrics.truePositives == 2)
        #expect(east.metrics.falsePositiveRate == 0.25 && east.metrics.precision == 2.0 / 3.0)
        // AUC: pairs (pos > neg) = 0.6 beats 3 of 4, 0.9 beats 4 of 4 → 7/8.
        #expect(east.metrics.rocAUC == 0.875)
        // FPR 0: the highest negative.
        let strict = try ThresholdCalibrator.calibrate(
            set: set, positives: positives, negatives: negatives, targetFPR: 0)
        #expect(abs(strict.concepts[0].newThreshold - 0.7) < 1e-6)
        #expect(strict.concepts[0].metrics.falsePositives == 0 && strict.concepts[0].metrics.truePositives == 1)
    }

    @Test func overlappingSetMaximizesYoudensJ() {
        // Positives 0.5, 0.6, 0.9; negatives 0.2, 0.55, 0.3: cutting between 0.3 and 0.5 gives J = 1 − 1/3,
        // between 0.55 and 0.6 gives J = 2/3 − 0: a tie, broken by the wider gap (0.3–0.5 → 0.4).
        let t = ThresholdCalibrator.threshold(positives: [0.5, 0.6, 0.9], negatives: [0.2, 0.55, 0.3], targetFPR: nil)
        #expect(t.map { abs($0 - 0.4) < 1e-6 } == true)
        #expect(ThresholdCalibrator.threshold(positives: [], negatives: [0.1], targetFPR: nil) == nil)
    }

    @Test func rejectsBadInput() {
        #expect(throws: SafetyError.self) {
            try ThresholdCalibrator.calibrate(set: set, positives: [], negatives: [[1, 0]], targetFPR: 1.5)
        }
        #expect(throws: SafetyError.self) {
            try ThresholdCalibrator.calibrate(
                set: set, positives: [LabelledEmbedding(embedding: [1, 0], concept: "west")], negatives: [])
        }
    }
}
