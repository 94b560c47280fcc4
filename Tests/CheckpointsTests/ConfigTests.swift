import Checkpoints
import Foundation
import TestSupport
import Testing

@Suite struct DiffusersFolderTests {
    let folder: DiffusersPipelineFolder

    init() throws {
        folder = try DiffusersPipelineFolder(url: fixture("sd-image-variations"))
    }

    @Test func modelIndex() throws {
        #expect(folder.className == "StableDiffusionImageVariationPipeline")
        #expect(folder.diffusersVersion == "0.9.0")
        #expect(
            folder.components.keys.sorted() == [
                "feature_extractor", "image_encoder", "safety_checker", "scheduler", "unet", "vae",
            ])
        let encoder = try folder.component("image_encoder")
        #expect(encoder.library == "transformers" && encoder.className == "CLIPVisionModelWithProjection")
        #expect(encoder.directory.lastPathComponent == "image_encoder")
        expectCheckpointError(["model_index.json", "text_encoder", "not listed"]) {
            _ = try folder.component("text_encoder")
        }
    }

    @Test func weightLookupPrefersSafetensors() throws {
        #expect(try folder.weightsURL(for: "vae").lastPathComponent == "diffusion_pytorch_model.safetensors")
        #expect(try folder.weightsURL(for: "unet").lastPathComponent == "diffusion_pytorch_model.safetensors")
        #expect(try folder.weights(for: "vae").keys == ["w"])
        expectCheckpointError(["image_encoder", "no weights"]) { _ = try folder.weightsURL(for: "image_encoder") }
    }

    @Test func unetConfig() throws {
        let c = try folder.unetConfig()
        #expect(c.source.hasSuffix("unet/config.json"))
        #expect(c.sampleSize == 64 && c.inChannels == 4 && c.outChannels == 4)
        #expect(c.blockOutChannels == [320, 640, 1280, 1280])
        #expect(
            c.downBlockTypes == ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"])
        #expect(c.upBlockTypes == ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
        #expect(c.attentionHeadDim == [8, 8, 8, 8] && c.headsPerBlock == [8, 8, 8, 8] && c.numAttentionHeads == nil)
        #expect(c.crossAttentionDim == [768, 768, 768, 768])
        #expect(c.layersPerBlock == [2, 2, 2, 2] && c.onlyCrossAttention == [false, false, false, false])
        #expect(c.flipSinToCos && c.freqShift == 0 && !c.centerInputSample)
        #expect(c.normNumGroups == 32 && c.normEps == 1e-5 && c.actFn == "silu")
        #expect(c.downsamplePadding == 1 && c.midBlockScaleFactor == 1)
        #expect(!c.useLinearProjection && !c.upcastAttention && !c.dualCrossAttention)
        // Absent in diffusers 0.9.0 configs: the defaults.
        #expect(c.midBlockType == "UNetMidBlock2DCrossAttn")
        #expect(c.transformerLayersPerBlock == [1, 1, 1, 1])
        #expect(c.resnetTimeScaleShift == "default" && c.timeEmbeddingType == "positional")
        #expect(c.classEmbedType == nil && c.numClassEmbeds == nil)
    }

    @Test func vaeConfig() throws {
        let c = try folder.vaeConfig()
        #expect(c.blockOutChannels == [128, 256, 512, 512] && c.layersPerBlock == 2)
        #expect(c.latentChannels == 4 && c.sampleSize == 256 && c.normNumGroups == 32)
        #expect(c.scalingFactor == 0.18215)  // absent in 0.9.0: default
        #expect(c.forceUpcast && c.midBlockAddAttention && c.useQuantConv)
    }

    @Test func schedulerConfig() throws {
        let c = try folder.schedulerConfig()
        #expect(c.className == "PNDMScheduler")
        #expect(c.numTrainTimesteps == 1000 && c.betaStart == 0.00085 && c.betaEnd == 0.012)
        #expect(c.betaSchedule == "scaled_linear" && c.trainedBetas == nil)
        #expect(c.skipPrkSteps == true && c.setAlphaToOne == false && c.clipSample == false)
        #expect(c.stepsOffset == 1 && c.predictionType == "epsilon")
        #expect(c.timestepSpacing == nil && c.resolvedTimestepSpacing == "leading")
        #expect(c.useKarrasSigmas == nil && c.solverOrder == nil)
    }

    @Test func imageEncoderConfig() throws {
        let c = try folder.imageEncoderConfig()
        #expect(c.hiddenSize == 1024 && c.numHiddenLayers == 24 && c.numAttentionHeads == 16)
        #expect(c.intermediateSize == 4096 && c.patchSize == 14 && c.projectionDim == 768)
        #expect(c.imageSize == 224 && c.hiddenAct == "quick_gelu" && c.layerNormEps == 1e-5)
        #expect(c.sequenceLength == 257)
    }

    @Test func safetyCheckerConfigFromCompositeCLIPConfig() throws {
        let c = try folder.safetyCheckerConfig()
        #expect(c.hiddenSize == 1024 && c.numHiddenLayers == 24 && c.numAttentionHeads == 16)
        #expect(c.intermediateSize == 4096 && c.patchSize == 14)
        #expect(c.projectionDim == 768)  // top level, not vision_config's 512
        #expect(c.imageSize == 224 && c.hiddenAct == "quick_gelu")  // transformers defaults
    }

    @Test func featureExtractorConfigs() throws {
        let old = try folder.featureExtractorConfig()
        #expect(old.size == .shortestEdge(224) && old.cropSize == .init(height: 224, width: 224))
        #expect(old.resample == 3 && old.doCenterCrop && old.doNormalize && old.doResize)
        #expect(old.doRescale && old.rescaleFactor == 1.0 / 255.0 && old.doConvertRGB)  // defaults
        #expect(old.imageMean == CLIPPreprocessorConfig.openAIMean && old.imageStd == CLIPPreprocessorConfig.openAIStd)
        let new = try CLIPPreprocessorConfig.load(url: fixture("sd-image-variations/feature_extractor_dict.json"))
        #expect(new.size == old.size && new.cropSize == old.cropSize && new.rescaleFactor == old.rescaleFactor)
        let exact = try CLIPPreprocessorConfig.decode(
            Data(#"{"size": {"height": 256, "width": 128}, "crop_size": 100}"#.utf8))
        #expect(exact.size == .exact(height: 256, width: 128) && exact.cropSize == .init(height: 100, width: 100))
    }
}

@Suite struct ConfigDefaultsAndValidationTests {
    @Test func emptyObjectsGiveLibraryDefaults() throws {
        let unet = try UNet2DConditionConfig.decode(Data("{}".utf8))
        #expect(unet == UNet2DConditionConfig())
        #expect(unet.crossAttentionDim == [1280, 1280, 1280, 1280] && unet.sampleSize == nil)
        let vae = try AutoencoderKLConfig.decode(Data("{}".utf8))
        #expect(vae.blockOutChannels == [64] && vae.layersPerBlock == 1 && vae.scalingFactor == 0.18215)
        let clip = try CLIPVisionConfig.decode(Data("{}".utf8))
        #expect(clip.hiddenSize == 768 && clip.intermediateSize == 3072 && clip.projectionDim == 512)
        #expect(clip.numHiddenLayers == 12 && clip.numAttentionHeads == 12 && clip.patchSize == 32)
        #expect(clip.numChannels == 3 && clip.imageSize == 224 && clip.hiddenAct == "quick_gelu")
        let sched = try SchedulerConfig.decode(Data("{}".utf8))
        #expect(sched.betaSchedule == "linear" && sched.betaStart == 0.0001 && sched.betaEnd == 0.02)
        #expect(sched.stepsOffset == 0 && sched.className == nil)
        let euler = try SchedulerConfig.decode(Data(#"{"_class_name": "EulerDiscreteScheduler"}"#.utf8))
        #expect(euler.resolvedTimestepSpacing == "linspace")
    }

    @Test func scalarOrArrayFields() throws {
        let json = #"""
            {"attention_head_dim": [5, 10, 20, 20], "num_attention_heads": null, "layers_per_block": 1,
             "only_cross_attention": [false, false, false, false], "use_linear_projection": true,
             "cross_attention_dim": 1024, "transformer_layers_per_block": [1, 2, 2, 1]}
            """#
        let c = try UNet2DConditionConfig.decode(Data(json.utf8))
        #expect(c.attentionHeadDim == [5, 10, 20, 20] && c.headsPerBlock == [5, 10, 20, 20])
        #expect(c.layersPerBlock == [1, 1, 1, 1] && c.crossAttentionDim == [1024, 1024, 1024, 1024])
        #expect(c.transformerLayersPerBlock == [1, 2, 2, 1] && c.useLinearProjection)
        let heads = try UNet2DConditionConfig.decode(Data(#"{"num_attention_heads": 10}"#.utf8))
        #expect(heads.headsPerBlock == [10, 10, 10, 10])
    }

    @Test func roundTripsThroughJSON() throws {
        let c = try UNet2DConditionConfig.load(url: fixture("sd-image-variations/unet/config.json"))
        let again = try UNet2DConditionConfig.decode(JSONEncoder().encode(c), source: c.source)
        #expect(again == c)
    }

    @Test func unsupportedValuesNameFileAndKey() throws {
        expectCheckpointError(["cfg.json", "act_fn", "unsupported value mish"]) {
            _ = try UNet2DConditionConfig.decode(Data(#"{"act_fn": "mish"}"#.utf8), source: "cfg.json")
        }
        expectCheckpointError(["cfg.json", "down_block_types", "unsupported value AttnDownBlock2D"]) {
            let json = #"{"down_block_types": ["AttnDownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D"]}"#
            _ = try UNet2DConditionConfig.decode(Data(json.utf8), source: "cfg.json")
        }
        expectCheckpointError(["cfg.json", "attention_head_dim", "3 entries"]) {
            _ = try UNet2DConditionConfig.decode(Data(#"{"attention_head_dim": [8, 8, 8]}"#.utf8), source: "cfg.json")
        }
        expectCheckpointError(["cfg.json", "up_block_types", "UpDecoderBlock3D"]) {
            _ = try AutoencoderKLConfig.decode(
                Data(#"{"up_block_types": ["UpDecoderBlock3D"]}"#.utf8), source: "cfg.json")
        }
        expectCheckpointError(["cfg.json", "beta_schedule", "sigmoid"]) {
            _ = try SchedulerConfig.decode(Data(#"{"beta_schedule": "sigmoid"}"#.utf8), source: "cfg.json")
        }
        expectCheckpointError(["cfg.json", "_class_name", "LMSDiscreteScheduler"]) {
            _ = try SchedulerConfig.decode(Data(#"{"_class_name": "LMSDiscreteScheduler"}"#.utf8), source: "cfg.json")
        }
        expectCheckpointError(["cfg.json", "hidden_act", "relu"]) {
            _ = try CLIPVisionConfig.decode(Data(#"{"hidden_act": "relu"}"#.utf8), source: "cfg.json")
        }
        expectCheckpointError(["cfg.json", "resample", "unsupported value 0"]) {
            _ = try CLIPPreprocessorConfig.decode(Data(#"{"resample": 0}"#.utf8), source: "cfg.json")
        }
    }

    @Test func typeErrorsNameTheKeyPath() {
        expectCheckpointError(["cfg.json", "block_out_channels"]) {
            _ = try UNet2DConditionConfig.decode(Data(#"{"block_out_channels": "wide"}"#.utf8), source: "cfg.json")
        }
        expectCheckpointError(["cfg.json", "vision_config.hidden_size"]) {
            _ = try CLIPVisionConfig.decode(
                Data(#"{"vision_config": {"hidden_size": "big"}}"#.utf8), source: "cfg.json")
        }
        expectCheckpointError(["missing.json", "cannot read"]) {
            _ = try SchedulerConfig.load(url: fixture("missing.json"))
        }
    }

    /// Settings that would change the UNet in ways not implemented are refused, naming the key; their inert
    /// values (the diffusers default, or null) pass.
    @Test func unetSettingsThatChangeTheNetworkAreRefused() throws {
        let inert = #"{"attention_type": "default", "resnet_out_scale_factor": 1, "cross_attention_norm": null}"#
        #expect(try UNet2DConditionConfig.decode(Data(inert.utf8)).changedSettings.isEmpty)
        for (json, key) in [
            (#"{"attention_type": "gated"}"#, "attention_type"),
            (#"{"resnet_out_scale_factor": 0.5}"#, "resnet_out_scale_factor"),
            (#"{"time_cond_proj_dim": 256}"#, "time_cond_proj_dim"),
            (#"{"class_embeddings_concat": true}"#, "class_embeddings_concat"),
        ] {
            do {
                _ = try UNet2DConditionConfig.decode(Data(json.utf8), source: "unet/config.json")
                Issue.record("\(json) was accepted")
            } catch let e as CheckpointError {
                #expect(e.key == key && e.file == "unet/config.json", "\(e)")
            }
        }
    }

    @Test func unetWriterVersion() throws {
        func config(_ version: String?) throws -> UNet2DConditionConfig {
            let json = version.map { #"{"_diffusers_version": "\#($0)"}"# } ?? "{}"
            return try UNet2DConditionConfig.decode(Data(json.utf8))
        }
        #expect(try config("0.8.1").writtenBefore(0, 9))
        #expect(try !config("0.9.0").writtenBefore(0, 9))
        #expect(try !config("0.9.0.dev0").writtenBefore(0, 9))
        #expect(try !config("0.42.1").writtenBefore(0, 9))
        #expect(try !config(nil).writtenBefore(0, 9))
    }
}
