import Checkpoints
import Tensors

/// Pseudo numerical methods for diffusion models (Liu et al. 2022).
///
/// Matches diffusers `PNDMScheduler` with `skip_prk_steps=True` (docs/algorithms.md#pndm): N+1 timesteps with the
/// second repeated; the first two calls form a Heun-like start, then Adams–Bashforth of order 2, 3, 4 on the
/// stored model outputs, each applied with formula (9) of the paper (`_get_prev_sample`). With
/// `skip_prk_steps=False` (the class default) it matches diffusers' pseudo Runge–Kutta warm-up: 12 model calls
/// (3 RK4 steps over half-step timesteps) before the fourth-order linear multistep steps.
public struct PNDMScheduler: Scheduler {
    public var kind: SchedulerKind { .pndm }
    public private(set) var timesteps: [Double] = []
    public var initNoiseSigma: Float { 1 }
    public var order: Int { 1 }
    public private(set) var numInferenceSteps = 0

    let schedule: NoiseSchedule
    let prediction: PredictionType
    let spacing: TimestepSpacing
    let stepsOffset: Int
    /// `final_alpha_cumprod`: 1 with `set_alpha_to_one`, else ᾱ₀.
    let finalAlphaCumprod: Float

    /// Whether the Runge–Kutta warm-up is skipped (`skip_prk_steps`).
    let skipPrk: Bool

    private var counter = 0
    private var ets: [Tensor] = []
    private var currentSample: Tensor?
    /// Runge–Kutta timesteps (`prk_timesteps`), empty with `skip_prk_steps`.
    private var prkTimesteps: [Int] = []
    /// The running RK4 combination of model outputs (`cur_model_output`).
    private var runningOutput: Tensor?

    /// Reads the keys diffusers' `PNDMScheduler` knows; absent ones take its defaults (`skip_prk_steps` false,
    /// `set_alpha_to_one` false, `timestep_spacing` "leading").
    public init(config: SchedulerConfig) throws {
        let name = "PNDMScheduler"
        skipPrk = config.skipPrkSteps ?? false
        schedule = try NoiseSchedule(config: config, scheduler: name)
        prediction = try predictionType(config, scheduler: name, supported: [.epsilon, .vPrediction])
        spacing = try timestepSpacing(config, default: .leading, scheduler: name)
        stepsOffset = config.stepsOffset
        finalAlphaCumprod = (config.setAlphaToOne ?? false) ? 1 : schedule.alphasCumprod[0]
    }

    public mutating func setTimesteps(_ count: Int) throws {
        try validateStepCount(count, trainTimesteps: schedule.trainTimesteps, scheduler: "PNDMScheduler")
        let ascending = Array(
            discreteTimesteps(
                spacing: spacing, count: count, trainTimesteps: schedule.trainTimesteps, stepsOffset: stepsOffset
            ).reversed())
        if skipPrk {
            // concat(ts[:-1], ts[-2:-1], ts[-1:])[::-1]
            var plms = Array(ascending.dropLast())
            if ascending.count >= 2 { plms.append(ascending[ascending.count - 2]) }
            plms.append(ascending[ascending.count - 1])
            prkTimesteps = []
            timesteps = plms.reversed().map(Double.init)
        } else {
            // prk = ts[-4:].repeat(2) + tile([0, T//N//2], 4); prk = prk[:-1].repeat(2)[1:-1][::-1]
            let half = schedule.trainTimesteps / count / 2
            var prk: [Int] = []
            for t in ascending.suffix(4) { prk += [t, t + half] }
            var doubled: [Int] = []
            for t in prk.dropLast() { doubled += [t, t] }
            prkTimesteps = Array(doubled.dropFirst().dropLast().reversed())
            let plms = ascending.dropLast(3).reversed()
            timesteps = (prkTimesteps + plms).map(Double.init)
        }
        numInferenceSteps = count
        counter = 0
        ets = []
        currentSample = nil
        runningOutput = nil
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor { sample }

    public mutating func step<R: RandomSource>(
        modelOutput: Tensor, timestep: Double, sample: Tensor, random: inout R
    ) throws -> Tensor {
        guard numInferenceSteps > 0 else { throw DiffusionError("PNDMScheduler: step called before setTimesteps") }
        if !skipPrk && counter < prkTimesteps.count {
            return try rungeKuttaStep(modelOutput: modelOutput, timestep: Int(timestep), sample: sample)
        }
        if !skipPrk && ets.count < 3 {
            throw DiffusionError("PNDMScheduler: linear multistep steps need the Runge–Kutta warm-up first")
        }
        let delta = schedule.trainTimesteps / numInferenceSteps
        var t = Int(timestep)
        var tPrev = t - delta
        if counter != 1 {
            ets = Array(ets.suffix(3)) + [modelOutput]
        } else {
            tPrev = t
            t += delta
        }
        var x = sample
        let m: Tensor
        if ets.count == 1 && counter == 0 {
            m = modelOutput
            currentSample = sample
        } else if ets.count == 1 && counter == 1 {
            guard let saved = currentSample else { throw DiffusionError("PNDMScheduler: missing first sample") }
            m = try elementwise(modelOutput, ets[0]) { ($0 + $1) / 2 }
            x = saved
            currentSample = nil
        } else if ets.count == 2 {
            m = try elementwise(ets[1], ets[0]) { (3 * $0 - $1) / 2 }
        } else if ets.count == 3 {
            m = try elementwise(ets[2], ets[1], ets[0]) { (23 * $0 - 16 * $1 + 5 * $2) / 12 }
        } else {
            m = try adamsBashforth4(ets[3], ets[2], ets[1], ets[0])
        }
        let prev = try previousSample(x, t: t, tPrev: tPrev, modelOutput: m)
        counter += 1
        return prev
    }

    /// diffusers `step_prk`: RK4 weights 1/6, 1/3, 1/3, 1/6 over the four calls of each warm-up step.
    private mutating func rungeKuttaStep(modelOutput: Tensor, timestep: Int, sample: Tensor) throws -> Tensor {
        let diffToPrev = counter % 2 == 1 ? 0 : schedule.trainTimesteps / numInferenceSteps / 2
        let tPrev = timestep - diffToPrev
        let t = prkTimesteps[counter / 4 * 4]
        let sixth = Float(1.0 / 6.0)
        let third = Float(1.0 / 3.0)
        var m = modelOutput
        switch counter % 4 {
        case 0:
            runningOutput = try accumulate(runningOutput, modelOutput, sixth)
            ets.append(modelOutput)
            currentSample = sample
        case 1, 2:
            runningOutput = try accumulate(runningOutput, modelOutput, third)
        default:
            m = try accumulate(runningOutput, modelOutput, sixth)
            runningOutput = nil
        }
        let prev = try previousSample(currentSample ?? sample, t: t, tPrev: tPrev, modelOutput: m)
        counter += 1
        return prev
    }

    /// `running + w * output` (with `running` absent meaning the Python integer 0).
    private func accumulate(_ running: Tensor?, _ output: Tensor, _ w: Float) throws -> Tensor {
        guard let running else { return elementwise(output) { 0 + w * $0 } }
        return try elementwise(running, output) { $0 + w * $1 }
    }

    /// `(1/24) * (55 e₁ − 59 e₂ + 37 e₃ − 9 e₄)`, float32, left to right.
    private func adamsBashforth4(_ e1: Tensor, _ e2: Tensor, _ e3: Tensor, _ e4: Tensor) throws -> Tensor {
        let partial = try elementwise(e1, e2, e3) { 55 * $0 - 59 * $1 + 37 * $2 }
        let c = Float(1.0 / 24.0)
        return try elementwise(partial, e4) { c * ($0 - 9 * $1) }
    }

    /// Formula (9) of the PNDM paper, as diffusers `_get_prev_sample`.
    private func previousSample(_ x: Tensor, t: Int, tPrev: Int, modelOutput: Tensor) throws -> Tensor {
        let ac = schedule.alphasCumprod
        guard t >= 0, t < ac.count, tPrev < ac.count else {
            throw DiffusionError("PNDMScheduler: timestep \(t) outside 0..<\(ac.count)")
        }
        let a = ac[t]
        let ap = tPrev >= 0 ? ac[tPrev] : finalAlphaCumprod
        let b = 1 - a
        let bp = 1 - ap
        var eps = modelOutput
        if prediction == .vPrediction {
            let sa = a.squareRoot()
            let sb = b.squareRoot()
            eps = try elementwise(modelOutput, x) { sa * $0 + sb * $1 }
        }
        let coef = (ap / a).squareRoot()
        let denom = a * bp.squareRoot() + (a * b * ap).squareRoot()
        let diff = ap - a
        return try elementwise(x, eps) { coef * $0 - diff * $1 / denom }
    }
}
