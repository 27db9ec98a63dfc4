"""The words the model reads, one `.txt` file per prompt; installed with the package as data
and loaded by name through `bot.answering.prompts`."""
