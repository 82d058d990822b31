"""Using the modality classes (chapters 3, 7, 8, 10): editing latents, and the one control that
compares a class's edit with matched random sets.

    editing       removing or scaling latents of a class, and the readouts of an edit
    control       class edits against matched random latent sets: the one control and verdict
    groups        group attributes (chapter 7)
    adversarial   attacks through a class's latents (chapter 8)
    decoder, reader, prior, unclip   generation (chapter 10): the small diffusion decoder, the reader of
                  drawn images, the priors from captions, and the real Stable unCLIP path
"""
