import torch

from generator.engine.export import _unet_key


def test_unet_export_inverts_diffusers_converter_for_the_sd15_layout():
    """SD 1.5's block layout (4 levels, 2 layers per block) with tiny channels: export, convert back, compare."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=8,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    state = unet.state_dict()
    ldm = {"model.diffusion_model." + _unet_key(key, unet.config): tensor for key, tensor in state.items()}
    assert "model.diffusion_model.input_blocks.3.0.op.weight" in ldm  # SD 1.5's first downsampler
    assert "model.diffusion_model.output_blocks.2.1.conv.weight" in ldm  # upsampler of a block without attention
    assert "model.diffusion_model.output_blocks.5.2.conv.weight" in ldm  # upsampler after attention
    back = convert_ldm_unet_checkpoint(ldm, dict(unet.config))
    assert set(back) == set(state)
    assert all(torch.equal(back[key], state[key]) for key in state)
