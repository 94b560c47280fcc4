import Checkpoints
import Tensors

/// Denoising diffusion implicit models (Song et al. 2021), eq. (12), with optional stochasticity `eta`.
///
/// Matches diffusers `DDIMScheduler` (docs/algorithms.md#ddim): `clip_sample` / `clip_sample_range`,
/// `set_alpha_to_one`, `prediction_type` epsilon, v_prediction and sample; with `eta > 0` one
/// `randn(model_output.shape)` is drawn per step after the deterministic update, as diffusers does.
/// `thresholding` (dynamic thresholding) is refused.
public struct DDIMScheduler: Scheduler {
    public var kind: SchedulerKind { .ddim }
    public private(set) var timesteps: [Double] = []
    public var initNoiseSigma: Float { 1 }
    public var order: Int { 1 }
    public private(set) var numInferenceSteps = 0
    /// η of eq. (16): 0 is deterministic DDIM, 1 is DDPM-like (the pipeline's `eta`, default 0).
    public var eta: Float

    let schedule: NoiseSchedule
    let prediction: PredictionType
    let spacing: TimestepSpacing
    let stepsOffset: Int
    let finalAlphaCumprod: Float
    /// Clamp range for x̂₀, or nil when `clip_sample` is false.
    let clipRange: Float?

    /// Reads the keys diffusers' `DDIMScheduler` knows; absent ones take its defaults (`clip_sample` true,
    /// `clip_sample_range` 1, `set_alpha_to_one` true, `timestep_spacing` "leading").
    public init(config: SchedulerConfig, eta: Float = 0) throws {
        let name = "DDIMScheduler"
        if config.thresholding == true {
            throw DiffusionError("\(name): thresholding true is not supported")
        }
        guard eta >= 0, eta.isFinite else { throw DiffusionError("\(name): eta must be ≥ 0, got \(eta)") }
        schedule = try NoiseSchedule(config: config, scheduler: name)
        prediction = try predictionType(config, scheduler: name, supported: PredictionType.allCases)
        spacing = try timestepSpacing(config, default: .leading, scheduler: name)
        stepsOffset = config.stepsOffset
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : schedule.alphasCumprod[0]
        clipRange = (config.clipSample ?? true) ? Float(config.clipSampleRange ?? 1) : nil
        self.eta = eta
    }

    public mutating func setTimesteps(_ count: Int) throws {
        try validateStepCount(count, trainTimesteps: schedule.trainTimesteps, scheduler: "DDIMScheduler")
        timesteps = discreteTimesteps(
            spacing: spacing, count: count, trainTimesteps: schedule.trainTimesteps, stepsOffset: stepsOffset
        ).map(Double.init)
        numInferenceSteps = count
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor { sample }

    public mutating func step<R: RandomSource>(
        modelOutput: Tensor, timestep: Double, sample: Tensor, random: inout R
    ) throws -> Tensor {
        guard numInferenceSteps > 0 else { throw DiffusionError("DDIMScheduler: step called before setTimesteps") }
        let ac = schedule.alphasCumprod
        let t = Int(timestep)
        let tPrev = t - schedule.trainTimesteps / numInferenceSteps
        guard t >= 0, t < ac.count else { throw DiffusionError("DDIMScheduler: timestep \(t) outside 0..<\(ac.count)") }
        let a = ac[t]
        let ap = tPrev >= 0 ? ac[tPrev] : finalAlphaCumprod
        let b = 1 - a
        let sa = a.squareRoot()
        let sb = b.squareRoot()

        var x0: Tensor
        let eps: Tensor
        switch prediction {
        case .epsilon:
            x0 = try elementwise(sample, modelOutput) { ($0 - sb * $1) / sa }
            eps = modelOutput
        case .sample:
            x0 = modelOutput
            eps = try elementwise(sample, modelOutput) { ($0 - sa * $1) / sb }
        case .vPrediction:
            x0 = try elementwise(sample, modelOutput) { sa * $0 - sb * $1 }
            eps = try elementwise(modelOutput, sample) { sa * $0 + sb * $1 }
        }
        if let r = clipRange {
            x0 = elementwise(x0) { min(max($0, -r), r) }
        }
        let bp = 1 - ap
        let variance = (bp / b) * (1 - a / ap)
        let sigma = eta * variance.squareRoot()
        let dirCoef = (1 - ap - sigma * sigma).squareRoot()
        let sap = ap.squareRoot()
        var prev = try elementwise(x0, eps) { sap * $0 + dirCoef * $1 }
        if eta > 0 {
            let noise = random.normal(shape: modelOutput.shape)
            prev = try elementwise(prev, noise) { $0 + sigma * $1 }
        }
        return prev
    }
}
