import Checkpoints
import Foundation
import Tensors

/// The σ-parameterized timestep schedule shared by the Euler schedulers (k-diffusion style).
struct SigmaSchedule: Sendable {
    /// float32 timesteps, descending (`scheduler.timesteps`).
    var timesteps: [Float] = []
    /// float32 σ per timestep plus the final one (`scheduler.sigmas`).
    var sigmas: [Float] = []

    /// diffusers' Euler `set_timesteps`: spaced float32 timesteps, σ by `np.interp` over the σ table in float64,
    /// optionally Karras σ (timesteps recovered by log-σ interpolation), then the final σ appended.
    init(
        count: Int, schedule: NoiseSchedule, spacing: TimestepSpacing, stepsOffset: Int, karras: Bool,
        finalSigmaMin: Bool
    ) {
        let t = schedule.trainTimesteps
        var steps: [Float]
        switch spacing {
        case .linspace:
            steps = numpyLinspace(0, Double(t - 1), count: count).reversed().map { Float($0) }
        case .leading:
            let ratio = t / count
            steps = (0..<count).reversed().map { Float($0 * ratio) + Float(stepsOffset) }
        case .trailing:
            steps = numpyArange(Double(t), 0, step: -Double(t) / Double(count)).map {
                Float($0.rounded(.toNearestOrEven)) - 1
            }
        }
        let table = schedule.sigmaTable
        var sig = steps.map { numpyInterp(Double($0), table: table) }
        if karras, let lo = sig.last, let hi = sig.first {
            sig = karrasSigmas(sigmaMin: lo, sigmaMax: hi, count: count)
            let logTable = table.map { Foundation.log($0) }
            steps = sig.map { Float(sigmaToTimestep($0, logSigmas: logTable)) }
        }
        let ac0 = schedule.alphasCumprod[0]
        let last: Float = finalSigmaMin ? ((1 - ac0) / ac0).squareRoot() : 0
        timesteps = steps
        sigmas = sig.map { Float($0) } + [last]
    }

    init() {}

    /// `index_for_timestep`: the position of `t`, the second one when it occurs more than once.
    func index(of t: Double, scheduler: String) throws -> Int {
        let matches = timesteps.indices.filter { Double(timesteps[$0]) == t }
        guard let first = matches.first else {
            throw DiffusionError("\(scheduler): timestep \(t) is not one of the scheduler's timesteps")
        }
        return matches.count > 1 ? matches[1] : first
    }

    /// `init_noise_sigma`: σ_max, or `sqrt(σ_max² + 1)` for "leading" spacing.
    func initNoiseSigma(spacing: TimestepSpacing) -> Float {
        let m = sigmas.max() ?? 1
        return spacing == .leading ? (m * m + 1).squareRoot() : m
    }

    /// `scale_model_input`: `x / sqrt(σ² + 1)`.
    func scale(_ sample: Tensor, sigma: Float) -> Tensor {
        let d = (sigma * sigma + 1).squareRoot()
        return elementwise(sample) { $0 / d }
    }

    /// The x̂₀ prediction of both Euler schedulers.
    static func predictedOriginal(
        _ prediction: PredictionType, sample: Tensor, modelOutput: Tensor, sigma: Float
    ) throws -> Tensor {
        switch prediction {
        case .epsilon:
            return try elementwise(sample, modelOutput) { $0 - sigma * $1 }
        case .vPrediction:
            let s2 = sigma * sigma + 1
            let c = -sigma / s2.squareRoot()
            return try elementwise(modelOutput, sample) { $0 * c + $1 / s2 }
        case .sample:
            return modelOutput
        }
    }
}

/// What both Euler schedulers do around their update rule: the σ schedule, the step index, finding a
/// timestep, scaling the model input and moving to the next σ.
struct SigmaStepper: Sendable {
    /// The scheduler's diffusers class name, for errors.
    let name: String
    private(set) var schedule = SigmaSchedule()
    private(set) var numInferenceSteps = 0
    private var stepIndex: Int?

    init(name: String) { self.name = name }

    /// Starts a new run over `schedule` of `count` steps.
    mutating func reset(_ schedule: SigmaSchedule, count: Int) {
        self.schedule = schedule
        numInferenceSteps = count
        stepIndex = nil
    }

    func index(of timestep: Double) throws -> Int {
        try stepIndex ?? schedule.index(of: timestep, scheduler: name)
    }

    /// `scale_model_input`.
    func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        schedule.scale(sample, sigma: schedule.sigmas[try index(of: timestep)])
    }

    /// The σ of `timestep` and of the next step, moving the step index on.
    mutating func advance(timestep: Double) throws -> (from: Float, to: Float) {
        let i = try index(of: timestep)
        guard i + 1 < schedule.sigmas.count else {
            throw DiffusionError("\(name): step called more often than there are timesteps")
        }
        stepIndex = i + 1
        return (schedule.sigmas[i], schedule.sigmas[i + 1])
    }
}

/// Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 2 with `s_churn = 0`).
///
/// Matches diffusers `EulerDiscreteScheduler` with its pipeline defaults (`s_churn` 0, so no
/// noise is drawn): `interpolation_type` "linear", optional `use_karras_sigmas`, `final_sigmas_type` "zero" or
/// "sigma_min", `timestep_type` "discrete"; prediction types epsilon, v_prediction and sample.
/// See docs/algorithms.md#euler.
public struct EulerDiscreteScheduler: Scheduler {
    public var kind: SchedulerKind { .euler }
    public var timesteps: [Double] { stepper.schedule.timesteps.map(Double.init) }
    public var initNoiseSigma: Float { stepper.schedule.initNoiseSigma(spacing: spacing) }
    public var order: Int { 1 }
    public var numInferenceSteps: Int { stepper.numInferenceSteps }
    /// The σ of each step plus the final σ (`scheduler.sigmas`), after `setTimesteps`.
    public var sigmas: [Float] { stepper.schedule.sigmas }

    let schedule: NoiseSchedule
    let prediction: PredictionType
    let spacing: TimestepSpacing
    let stepsOffset: Int
    let karras: Bool
    let finalSigmaMin: Bool
    private var stepper = SigmaStepper(name: "EulerDiscreteScheduler")

    /// Reads the keys diffusers' `EulerDiscreteScheduler` knows; absent ones take its defaults
    /// (`timestep_spacing` "linspace", `interpolation_type` "linear", `use_karras_sigmas` false,
    /// `final_sigmas_type` "zero").
    public init(config: SchedulerConfig) throws {
        let name = "EulerDiscreteScheduler"
        schedule = try NoiseSchedule(config: config, scheduler: name)
        prediction = try predictionType(config, scheduler: name, supported: PredictionType.allCases)
        spacing = try timestepSpacing(config, default: .linspace, scheduler: name)
        stepsOffset = config.stepsOffset
        karras = config.useKarrasSigmas ?? false
        if let i = config.interpolationType, i != "linear" {
            throw DiffusionError.unsupported("interpolation_type", i, scheduler: name, supported: ["linear"])
        }
        let final = config.finalSigmasType ?? "zero"
        guard final == "zero" || final == "sigma_min" else {
            throw DiffusionError.unsupported(
                "final_sigmas_type", final, scheduler: name, supported: ["zero", "sigma_min"])
        }
        finalSigmaMin = final == "sigma_min"
    }

    public mutating func setTimesteps(_ count: Int) throws {
        try validateStepCount(count, trainTimesteps: schedule.trainTimesteps, scheduler: "EulerDiscreteScheduler")
        stepper.reset(
            SigmaSchedule(
                count: count, schedule: schedule, spacing: spacing, stepsOffset: stepsOffset, karras: karras,
                finalSigmaMin: finalSigmaMin), count: count)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try stepper.scaleModelInput(sample, timestep: timestep)
    }

    public mutating func step<R: RandomSource>(
        modelOutput: Tensor, timestep: Double, sample: Tensor, random: inout R
    ) throws -> Tensor {
        let (sigma, next) = try stepper.advance(timestep: timestep)
        let x0 = try SigmaSchedule.predictedOriginal(prediction, sample: sample, modelOutput: modelOutput, sigma: sigma)
        let dt = next - sigma
        return try elementwise(sample, x0) { x, p in x + ((x - p) / sigma) * dt }
    }
}

/// Euler ancestral sampling (k-diffusion `sample_euler_ancestral`, η = 1).
///
/// Matches diffusers `EulerAncestralDiscreteScheduler`: a deterministic Euler step to σ_down,
/// then `randn(model_output.shape) · σ_up` — drawn on every step, the last one included.
/// See docs/algorithms.md#euler-ancestral.
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public var kind: SchedulerKind { .eulerAncestral }
    public var timesteps: [Double] { stepper.schedule.timesteps.map(Double.init) }
    public var initNoiseSigma: Float { stepper.schedule.initNoiseSigma(spacing: spacing) }
    public var order: Int { 1 }
    public var numInferenceSteps: Int { stepper.numInferenceSteps }
    /// The σ of each step plus the final 0 (`scheduler.sigmas`), after `setTimesteps`.
    public var sigmas: [Float] { stepper.schedule.sigmas }

    let schedule: NoiseSchedule
    let prediction: PredictionType
    let spacing: TimestepSpacing
    let stepsOffset: Int
    private var stepper = SigmaStepper(name: "EulerAncestralDiscreteScheduler")

    /// Reads the keys diffusers' `EulerAncestralDiscreteScheduler` knows; absent ones take its defaults
    /// (`timestep_spacing` "linspace"). It has no Karras option, so `use_karras_sigmas` is ignored.
    public init(config: SchedulerConfig) throws {
        let name = "EulerAncestralDiscreteScheduler"
        schedule = try NoiseSchedule(config: config, scheduler: name)
        prediction = try predictionType(config, scheduler: name, supported: [.epsilon, .vPrediction])
        spacing = try timestepSpacing(config, default: .linspace, scheduler: name)
        stepsOffset = config.stepsOffset
    }

    public mutating func setTimesteps(_ count: Int) throws {
        try validateStepCount(
            count, trainTimesteps: schedule.trainTimesteps, scheduler: "EulerAncestralDiscreteScheduler")
        stepper.reset(
            SigmaSchedule(
                count: count, schedule: schedule, spacing: spacing, stepsOffset: stepsOffset, karras: false,
                finalSigmaMin: false), count: count)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor {
        try stepper.scaleModelInput(sample, timestep: timestep)
    }

    public mutating func step<R: RandomSource>(
        modelOutput: Tensor, timestep: Double, sample: Tensor, random: inout R
    ) throws -> Tensor {
        let (from, to) = try stepper.advance(timestep: timestep)
        let x0 = try SigmaSchedule.predictedOriginal(prediction, sample: sample, modelOutput: modelOutput, sigma: from)
        let from2 = from * from
        let to2 = to * to
        let up = (to2 * (from2 - to2) / from2).squareRoot()
        let down = (to2 - up * up).squareRoot()
        let dt = down - from
        let moved = try elementwise(sample, x0) { x, p in x + ((x - p) / from) * dt }
        let noise = random.normal(shape: modelOutput.shape)
        return try elementwise(moved, noise) { $0 + $1 * up }
    }
}
