"""The RGPT-2 Discord bot: cogs and views (Discord I/O), services (plain Python), storage."""
