"""Open WebUI as a data source: its chat documents (`document`) and its database (`reader`)."""

from shared.openwebui.document import ChatRecord, MessageRecord, parse_conversation, primary_model
from shared.openwebui.reader import (
    ConversationRef,
    UserGroup,
    iter_conversations,
    list_changed_since,
    list_conversation_ids_for_local_date,
    load_conversation,
    load_conversation_ref,
    load_known_names,
    load_user_groups,
    load_user_groups_of,
    load_user_role,
    local_day_bounds,
)

__all__ = [
    "ChatRecord",
    "ConversationRef",
    "MessageRecord",
    "UserGroup",
    "iter_conversations",
    "list_changed_since",
    "list_conversation_ids_for_local_date",
    "load_conversation",
    "load_conversation_ref",
    "load_known_names",
    "load_user_groups",
    "load_user_groups_of",
    "load_user_role",
    "local_day_bounds",
    "parse_conversation",
    "primary_model",
]
