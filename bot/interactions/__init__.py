"""What the features share with the people who use them: private answers, failure answers, and the
menus under an explanation (discord.ui components that survive a restart)."""
