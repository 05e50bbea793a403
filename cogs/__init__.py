"""discord.py extensions, one feature each; each module has ``async def setup(bot)``."""
