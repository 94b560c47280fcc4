import Checkpoints
import Foundation
import Tensors

/// DPM-Solver++ multistep (Lu et al. 2022, Algorithm 2: "DPM-Solver++(2M)"), data-prediction form.
///
/// Matches diffusers `DPMSolverMultistepScheduler` for `algorithm_type` "dpmsolver++",
/// `solver_order` 1 or 2, `solver_type` "midpoint" or "heun", `lower_order_final`, `final_sigmas_type` "zero" or
/// "sigma_min", optional `use_karras_sigmas`; prediction types epsilon, v_prediction and sample. The SDE variants
/// and the older "dpmsolver" algorithm are refused. Deterministic: no noise is drawn.
/// See docs/algorithms.md#dpm-solver-2m.
public struct DPMSolverMultistepScheduler: Scheduler {
    public var kind: SchedulerKind { .dpmSolverMultistep }
    public private(set) var timesteps: [Double] = []
    public var initNoiseSigma: Float { 1 }
    public var order: Int { 1 }
    public private(set) var numInferenceSteps = 0
    /// The σ of each step plus the final σ (`scheduler.sigmas`), after `setTimesteps`.
    public private(set) var sigmas: [Float] = []

    let schedule: NoiseSchedule
    let prediction: PredictionType
    let spacing: TimestepSpacing
    let stepsOffset: Int
    let solverOrder: Int
    let heun: Bool
    let lowerOrderFinal: Bool
    let karras: Bool
    let finalSigmaMin: Bool
    private var stepIndex: Int?
    private var lowerOrderCount = 0
    /// The last `solverOrder` x̂₀ predictions, newest last.
    private var history: [Tensor] = []

    /// Reads the keys diffusers' `DPMSolverMultistepScheduler` knows; absent ones take its defaults
    /// (`algorithm_type` "dpmsolver++", `solver_order` 2, `solver_type` "midpoint", `lower_order_final` true,
    /// `use_karras_sigmas` false, `final_sigmas_type` "zero", `timestep_spacing` "linspace").
    public init(config: SchedulerConfig) throws {
        let name = "DPMSolverMultistepScheduler"
        schedule = try NoiseSchedule(config: config, scheduler: name)
        prediction = try predictionType(config, scheduler: name, supported: PredictionType.allCases)
        spacing = try timestepSpacing(config, default: .linspace, scheduler: name)
        stepsOffset = config.stepsOffset
        if config.thresholding == true { throw DiffusionError("\(name): thresholding true is not supported") }
        let algorithm = config.algorithmType ?? "dpmsolver++"
        guard algorithm == "dpmsolver++" || algorithm == "deis" else {
            throw DiffusionError.unsupported("algorithm_type", algorithm, scheduler: name, supported: ["dpmsolver++"])
        }
        solverOrder = config.solverOrder ?? 2
        guard solverOrder == 1 || solverOrder == 2 else {
            throw DiffusionError.unsupported("solver_order", solverOrder, scheduler: name, supported: ["1", "2"])
        }
        let type = config.solverType ?? "midpoint"
        switch type {
        case "midpoint", "logrho", "bh1", "bh2": heun = false  // diffusers maps the last three to midpoint
        case "heun": heun = true
        default:
            throw DiffusionError.unsupported("solver_type", type, scheduler: name, supported: ["midpoint", "heun"])
        }
        lowerOrderFinal = config.lowerOrderFinal ?? true
        karras = config.useKarrasSigmas ?? false
        let final = config.finalSigmasType ?? "zero"
        guard final == "zero" || final == "sigma_min" else {
            throw DiffusionError.unsupported(
                "final_sigmas_type", final, scheduler: name, supported: ["zero", "sigma_min"])
        }
        finalSigmaMin = final == "sigma_min"
    }

    public mutating func setTimesteps(_ count: Int) throws {
        let t = schedule.trainTimesteps
        try validateStepCount(count, trainTimesteps: t, scheduler: "DPMSolverMultistepScheduler")
        var steps: [Double]
        switch spacing {
        case .linspace:
            steps = Array(
                numpyLinspace(0, Double(t - 1), count: count + 1).map { $0.rounded(.toNearestOrEven) }
                    .reversed().dropLast())
        case .leading:
            let ratio = t / (count + 1)
            steps = (0...count).reversed().dropLast().map { Double($0 * ratio + stepsOffset) }
        case .trailing:
            steps = numpyArange(Double(t), 0, step: -Double(t) / Double(count)).map {
                $0.rounded(.toNearestOrEven) - 1
            }
        }
        let table = schedule.sigmaTable
        var sig: [Double]
        if karras {
            guard let lo = table.first, let hi = table.last else { throw DiffusionError("empty sigma table") }
            sig = karrasSigmas(sigmaMin: Double(lo), sigmaMax: Double(hi), count: count)
            let logTable = table.map { Foundation.log($0) }
            steps = sig.map { sigmaToTimestep($0, logSigmas: logTable) }
            if schedule.betaScheduleName != "squaredcos_cap_v2" {
                steps = steps.map { $0.rounded(.toNearestOrEven) }
            }
        } else {
            sig = steps.map { numpyInterp($0, table: table) }
        }
        let ac0 = schedule.alphasCumprod[0]
        let last: Float = finalSigmaMin ? ((1 - ac0) / ac0).squareRoot() : 0
        sigmas = sig.map { Float($0) } + [last]
        timesteps = steps.map { Double(Int64($0)) }
        numInferenceSteps = timesteps.count
        stepIndex = nil
        lowerOrderCount = 0
        history = []
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor { sample }

    /// `index_for_timestep`: the second match when duplicated, the last step when absent.
    private func index(of t: Double) -> Int {
        let matches = timesteps.indices.filter { timesteps[$0] == t }
        if matches.isEmpty { return timesteps.count - 1 }
        return matches.count > 1 ? matches[1] : matches[0]
    }

    /// `_sigma_to_alpha_sigma_t`: α = 1/sqrt(σ²+1), σ_t = σ·α.
    private static func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
        let alpha = 1 / (sigma * sigma + 1).squareRoot()
        return (alpha, sigma * alpha)
    }

    public mutating func step<R: RandomSource>(
        modelOutput: Tensor, timestep: Double, sample: Tensor, random: inout R
    ) throws -> Tensor {
        guard numInferenceSteps > 0 else {
            throw DiffusionError("DPMSolverMultistepScheduler: step called before setTimesteps")
        }
        let i = stepIndex ?? index(of: timestep)
        guard i + 1 < sigmas.count else {
            throw DiffusionError("DPMSolverMultistepScheduler: step called more often than there are timesteps")
        }
        let n = timesteps.count
        let lowerFinal = i == n - 1 && ((lowerOrderFinal && n < 15) || !finalSigmaMin)

        // convert_model_output: x̂₀
        let (alphaS, sigmaS) = Self.alphaSigma(sigmas[i])
        let x0: Tensor
        switch prediction {
        case .epsilon: x0 = try elementwise(sample, modelOutput) { ($0 - sigmaS * $1) / alphaS }
        case .sample: x0 = modelOutput
        case .vPrediction: x0 = try elementwise(sample, modelOutput) { alphaS * $0 - sigmaS * $1 }
        }
        history.append(x0)
        if history.count > solverOrder { history.removeFirst() }

        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[i + 1])
        let lambdaT = log(alphaT) - log(sigmaT)
        let lambdaS0 = log(alphaS) - log(sigmaS)
        let h = lambdaT - lambdaS0
        let ratio = sigmaT / sigmaS
        let expm = alphaT * (exp(-h) - 1)
        let prev: Tensor
        if solverOrder == 1 || lowerOrderCount < 1 || lowerFinal {
            prev = try elementwise(sample, x0) { ratio * $0 - expm * $1 }
        } else {
            let (alphaS1, sigmaS1) = Self.alphaSigma(sigmas[i - 1])
            let lambdaS1 = log(alphaS1) - log(sigmaS1)
            let h0 = lambdaS0 - lambdaS1
            let r0 = h0 / h
            let invR0 = 1 / r0
            let m0 = history[history.count - 1]
            let m1 = history[history.count - 2]
            let d1 = try elementwise(m0, m1) { invR0 * ($0 - $1) }
            if heun {
                let c1 = alphaT * ((exp(-h) - 1) / h + 1)
                prev = try elementwise(sample, m0, d1) { ratio * $0 - expm * $1 + c1 * $2 }
            } else {
                prev = try elementwise(sample, m0, d1) { ratio * $0 - expm * $1 - 0.5 * expm * $2 }
            }
        }
        if lowerOrderCount < solverOrder { lowerOrderCount += 1 }
        stepIndex = i + 1
        return prev
    }
}
