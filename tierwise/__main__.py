from tierwise.cli import app

app()
