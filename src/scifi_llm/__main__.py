from scifi_llm.cli import main

main()
