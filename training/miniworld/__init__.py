"""The mini-world: a procedural ground-truth world of retro / modern anime bust portraits (Django-free).

A designed world whose every picture has known attributes, used to pretrain a tiny Stable Diffusion offline
and to benchmark fine-tuning choices: ``render`` draws a character, ``caption`` describes it, the shipped
ground-truth classifier (``load_classifier`` / ``classify``) reads the attributes back from any picture.
"""
from .attributes import (ATTRIBUTES, HEADS, Accessory, Age, Attributes, Background, Clothing, Gender, Glasses,
                         HairColor, HairStyle, Style, index_of, sample_attributes)
from .captions import caption, parse_caption
from .render import render

__all__ = [
    "ATTRIBUTES", "HEADS", "Accessory", "Age", "Attributes", "Background", "Clothing", "Gender", "Glasses",
    "HairColor", "HairStyle", "Style", "index_of", "sample_attributes", "caption", "parse_caption", "render",
]
