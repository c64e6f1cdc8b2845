"""One APIRouter per resource of the HTTP API; ``service.app`` includes them."""
