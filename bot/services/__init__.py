"""The services layer: plain Python between the Discord front-end and rgpt2/storage.

Nothing here imports discord. Each module holds one feature's rules (cooldowns, votes,
battles, fine-tune jobs, ...), called by the cogs and by ``rgpt2 play`` alike.
"""
