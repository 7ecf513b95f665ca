"""Assembles the Slack integration from its parts for the agent."""

from __future__ import annotations

from podium.integration import Integration, IntegrationContext

from .api import SlackApi, web_client
from .app import SocketMode, bolt_app, http_routes
from .commands import Commands
from .config import SlackConfig
from .deps import Deps
from .directory import SlackPeople, directory_factory
from .interactions import Interactions
from .messages import NOTIFIER, MessageBook
from .notifier import SlackNotifier
from .publisher import Publisher
from .sweeper import Sweeper


def build(ctx: IntegrationContext, config: SlackConfig) -> Integration:
    """Notifier, directory, ``/slack/events`` route and Socket Mode, sharing one store."""
    # Outbox sends: no slack_sdk retries (the outbox backs off and honours Retry-After).
    send_api = SlackApi(web_client(config, retries=False))
    # Follow-ups after an ack: retry a refused connection and one 429 in place.
    interactive_client = web_client(config, retries=True)
    interactive_api = SlackApi(interactive_client)

    people = SlackPeople(send_api, ttl=config.cache_ttl)
    publisher = Publisher(ctx.store, MessageBook(ctx.store, send_api), people)
    notifier = SlackNotifier(ctx.store, publisher, people, config, ctx.repo_config)
    directory = directory_factory(people)

    deps = Deps(
        ctx=ctx,
        api=interactive_api,
        publisher=publisher,
        people=people,
        directory_for_run=directory,
    )
    app = bolt_app(config, interactive_client)
    Interactions(deps).register(app)
    Commands(deps).register(app)

    socket = SocketMode(app, config.app_token) if config.app_token else None
    sweeper = Sweeper(publisher)

    def start() -> None:
        sweeper.start()
        if socket is not None:
            socket.start()

    def stop() -> None:
        if socket is not None:
            socket.stop()
        sweeper.stop()

    return Integration(
        name=NOTIFIER,
        notifiers={NOTIFIER: notifier},
        routes=http_routes(app) if config.http_enabled else (),
        directory=directory,
        start=start,
        stop=stop,
    )


__all__ = ["build"]
