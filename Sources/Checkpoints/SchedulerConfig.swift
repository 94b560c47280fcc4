import Foundation

/// A diffusers scheduler config (`scheduler/scheduler_config.json`).
///
/// Fields every scheduler shares take diffusers' common defaults; fields whose default differs per
/// scheduler class (or that only some classes have) are `nil` when absent, for the scheduler to resolve.
public struct SchedulerConfig: CheckpointConfig, Equatable {
    public var source = "<memory>"
    /// The scheduler class that wrote the config (e.g. "PNDMScheduler"); nil when absent.
    public var className: String?
    /// diffusers version that wrote it.
    public var diffusersVersion: String?
    /// Training timesteps (default 1000).
    public var numTrainTimesteps: Int
    /// First beta (default 0.0001).
    public var betaStart: Double
    /// Last beta (default 0.02).
    public var betaEnd: Double
    /// "linear", "scaled_linear" or "squaredcos_cap_v2" (default "linear").
    public var betaSchedule: String
    /// Explicit betas (default nil).
    public var trainedBetas: [Double]?
    /// What the model predicts (default "epsilon").
    public var predictionType: String
    /// Offset added to inference timesteps (default 0).
    public var stepsOffset: Int
    /// PNDM: skip the Runge-Kutta warm-up steps (class default false).
    public var skipPrkSteps: Bool?
    /// PNDM/DDIM: final alpha-cumprod is 1 (class default true).
    public var setAlphaToOne: Bool?
    /// DDIM: clip the predicted sample (class default true).
    public var clipSample: Bool?
    /// DDIM: clipping range (class default 1.0).
    public var clipSampleRange: Double?
    /// "leading", "trailing" or "linspace"; absent in old configs (see `resolvedTimestepSpacing`).
    public var timestepSpacing: String?
    /// Dynamic thresholding (class default false).
    public var thresholding: Bool?
    /// Dynamic thresholding ratio (class default 0.995).
    public var dynamicThresholdingRatio: Double?
    /// Dynamic thresholding maximum (class default 1.0).
    public var sampleMaxValue: Double?
    /// Euler/DPM: Karras sigmas (class default false).
    public var useKarrasSigmas: Bool?
    /// DPM-Solver order (class default 2).
    public var solverOrder: Int?
    /// DPM-Solver algorithm (class default "dpmsolver++").
    public var algorithmType: String?
    /// DPM-Solver second-order type (class default "midpoint").
    public var solverType: String?
    /// DPM-Solver: lower order in the final steps (class default true).
    public var lowerOrderFinal: Bool?
    /// DPM-Solver final sigma (class default "zero").
    public var finalSigmasType: String?
    /// Euler sigma interpolation (class default "linear").
    public var interpolationType: String?
    /// Rescale betas to zero terminal SNR (class default false).
    public var rescaleBetasZeroSnr: Bool?
    /// Keys of `inertSettings` whose values would change the sampling (refused by `validate()`).
    public var changedSettings: [String] = []

    /// `timestep_spacing`, or the class default of current diffusers when absent
    /// ("leading" for PNDM and DDIM, "linspace" for Euler, Euler-ancestral and DPM-Solver).
    public var resolvedTimestepSpacing: String {
        if let timestepSpacing { return timestepSpacing }
        switch className {
        case "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler":
            return "linspace"
        default:
            return "leading"
        }
    }

    enum CodingKeys: String, CodingKey {
        case className = "_class_name"
        case diffusersVersion = "_diffusers_version"
        case numTrainTimesteps = "num_train_timesteps"
        case betaStart = "beta_start"
        case betaEnd = "beta_end"
        case betaSchedule = "beta_schedule"
        case trainedBetas = "trained_betas"
        case predictionType = "prediction_type"
        case stepsOffset = "steps_offset"
        case skipPrkSteps = "skip_prk_steps"
        case setAlphaToOne = "set_alpha_to_one"
        case clipSample = "clip_sample"
        case clipSampleRange = "clip_sample_range"
        case timestepSpacing = "timestep_spacing"
        case thresholding
        case dynamicThresholdingRatio = "dynamic_thresholding_ratio"
        case sampleMaxValue = "sample_max_value"
        case useKarrasSigmas = "use_karras_sigmas"
        case solverOrder = "solver_order"
        case algorithmType = "algorithm_type"
        case solverType = "solver_type"
        case lowerOrderFinal = "lower_order_final"
        case finalSigmasType = "final_sigmas_type"
        case interpolationType = "interpolation_type"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        className = try c.decodeIfPresent(String.self, forKey: .className)
        diffusersVersion = try c.decodeIfPresent(String.self, forKey: .diffusersVersion)
        numTrainTimesteps = try c.value(.numTrainTimesteps, 1000)
        betaStart = try c.value(.betaStart, 0.0001)
        betaEnd = try c.value(.betaEnd, 0.02)
        betaSchedule = try c.value(.betaSchedule, "linear")
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: .trainedBetas)
        predictionType = try c.value(.predictionType, "epsilon")
        stepsOffset = try c.value(.stepsOffset, 0)
        skipPrkSteps = try c.decodeIfPresent(Bool.self, forKey: .skipPrkSteps)
        setAlphaToOne = try c.decodeIfPresent(Bool.self, forKey: .setAlphaToOne)
        clipSample = try c.decodeIfPresent(Bool.self, forKey: .clipSample)
        clipSampleRange = try c.decodeIfPresent(Double.self, forKey: .clipSampleRange)
        timestepSpacing = try c.decodeIfPresent(String.self, forKey: .timestepSpacing)
        thresholding = try c.decodeIfPresent(Bool.self, forKey: .thresholding)
        dynamicThresholdingRatio = try c.decodeIfPresent(Double.self, forKey: .dynamicThresholdingRatio)
        sampleMaxValue = try c.decodeIfPresent(Double.self, forKey: .sampleMaxValue)
        useKarrasSigmas = try c.decodeIfPresent(Bool.self, forKey: .useKarrasSigmas)
        solverOrder = try c.decodeIfPresent(Int.self, forKey: .solverOrder)
        algorithmType = try c.decodeIfPresent(String.self, forKey: .algorithmType)
        solverType = try c.decodeIfPresent(String.self, forKey: .solverType)
        lowerOrderFinal = try c.decodeIfPresent(Bool.self, forKey: .lowerOrderFinal)
        finalSigmasType = try c.decodeIfPresent(String.self, forKey: .finalSigmasType)
        interpolationType = try c.decodeIfPresent(String.self, forKey: .interpolationType)
        rescaleBetasZeroSnr = try c.decodeIfPresent(Bool.self, forKey: .rescaleBetasZeroSnr)
        changedSettings = try Self.changedSettings(in: decoder, inert: Self.inertSettings)
    }

    /// Settings of diffusers' schedulers that would change the sampling in ways not implemented here, with the
    /// value that leaves it unchanged (`null` and absence also do); `validate()` refuses others.
    static let inertSettings: [String: JSONValue] = [
        "timestep_type": .string("discrete"), "use_exponential_sigmas": .bool(false), "use_beta_sigmas": .bool(false),
        "use_flow_sigmas": .bool(false), "use_dynamic_shifting": .bool(false), "euler_at_final": .bool(false),
        "use_lu_lambdas": .bool(false), "variance_type": .null, "sigma_min": .null, "sigma_max": .null,
    ]

    public func validate() throws {
        try refuseChanged(changedSettings, inert: Self.inertSettings)
        let known = SupportedConfigValues.self
        try require("_class_name", [className], in: known.schedulers)
        try require("beta_schedule", [betaSchedule], in: known.betaSchedules)
        try require("prediction_type", [predictionType], in: known.predictionTypes)
        try require("timestep_spacing", [timestepSpacing], in: known.timestepSpacings)
        if numTrainTimesteps < 1 { throw invalid("num_train_timesteps", "must be ≥ 1") }
        if let b = trainedBetas, b.count != numTrainTimesteps {
            throw invalid("trained_betas", "\(b.count) betas for \(numTrainTimesteps) timesteps")
        }
        if !(betaStart > 0 && betaEnd >= betaStart && betaEnd < 1) {
            throw invalid("beta_start", "betas \(betaStart)…\(betaEnd) must satisfy 0 < start ≤ end < 1")
        }
    }
}
