"""A1111's sampler labels for our scheduler names, without diffusers (the web page's "Read PNG info" maps a
PNG's `Sampler:` + `Schedule type:` back to a scheduler with them); generator.engine.schedulers checks that
both lists name the same schedulers."""

# What AUTOMATIC1111 (>= 1.9) writes as "Sampler:" and "Schedule type:" for the same sampling, so pasting our
# infotext into A1111 picks it: PNDM as SD ships it is A1111's PLMS; A1111's DPM++ 2M runs Karras sigmas by
# default ("Automatic"), so our plain one is "Uniform" (A1111 still reads the old "DPM++ 2M Karras" too).
SAMPLER_LABELS = {
    "pndm": ("PLMS", "Automatic"),
    "ddim": ("DDIM", "Automatic"),
    "euler": ("Euler", "Automatic"),
    "euler_a": ("Euler a", "Automatic"),
    "dpmpp_2m": ("DPM++ 2M", "Uniform"),
    "dpmpp_2m_karras": ("DPM++ 2M", "Karras"),
    "unipc": ("UniPC", "Automatic"),
}
