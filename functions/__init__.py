"""The platform API: a stateless ASGI app, run under uvicorn or AWS Lambda (Mangum)."""
