from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from market.models import Alert, AlertEvent, ApiToken, CalendarOverride, Layout, NotifyChannel, RestBudget, Symbol
from market.selectors import notify_channel_as_dict
from market.tokens import SCOPES, api_token_revoke, api_token_save_new, scope_words


@admin.register(Symbol)
class SymbolAdmin(admin.ModelAdmin):
    list_display = ("ticker", "name", "exchange", "kind", "active", "always_record", "source", "tick_size", "lot_size")
    list_filter = ("active", "always_record", "exchange", "kind", "source")
    list_editable = ("active",)
    search_fields = ("ticker", "name", "isin", "fytoken")
    actions = ("activate", "deactivate")

    @admin.action(description="Activate selected symbols")
    def activate(self, request, queryset):
        self.message_user(request, f"{queryset.update(active=True)} symbol(s) activated")

    @admin.action(description="Deactivate selected symbols")
    def deactivate(self, request, queryset):
        self.message_user(request, f"{queryset.update(active=False)} symbol(s) deactivated")


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return (("yes", "Revoked"), ("no", "Not revoked"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


class ApiTokenScopesForm(forms.ModelForm):
    """Every token reads; the boxes add what it may write (market.tokens.SCOPES)."""

    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in SCOPES if s != "read"], widget=forms.CheckboxSelectMultiple, required=False,
        help_text="Every token reads; these let it write the owner's alerts, markers or drawings.")

    class Meta:
        model = ApiToken
        fields = ("user", "name", "expires_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["scopes"] = [w for w in self.instance.scope.split() if w != "read"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Personal API tokens: every one reads, and its scopes add what it may write. The secret
    is shown once, in a message after "Save"; only its digest is stored, so it can never be
    displayed again (market.tokens)."""

    form = ApiTokenScopesForm
    list_display = ("name", "prefix_shown", "user", "created_at", "last_used_at", "expires_at", "revoked", "scope")
    list_filter = (RevokedFilter, "created_at")
    search_fields = ("name", "prefix", "user__username")
    actions = ("revoke",)
    # Never "digest": it is not the secret, but there is nothing to gain from showing it.
    readonly_fields = ("prefix_shown", "scope", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "scopes", "expires_at") if request.user.is_superuser else (
                "name", "scopes", "expires_at")
        return ("user", "name", "scopes", "prefix_shown", "created_at", "last_used_at", "expires_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("user",) if obj is not None else ())

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("user")
        # Staff who are not superusers manage only their own tokens.
        return qs if request.user.is_superuser else qs.filter(user=request.user)

    def get_changeform_initial_data(self, request):
        return {"user": request.user.pk}

    @admin.display(description="prefix")
    def prefix_shown(self, obj):
        return f"{obj.prefix}…" if obj.prefix else "—"

    @admin.display(boolean=True, description="revoked")
    def revoked(self, obj):
        return obj.revoked_at is not None

    def save_model(self, request, obj, form, change):
        obj.scope = scope_words(form.cleaned_data.get("scopes") or [])
        if change:
            super().save_model(request, obj, form, change)
            return
        if not request.user.is_superuser:
            obj.user = request.user
        secret = api_token_save_new(token=obj)
        # Messages live in the session (settings.MESSAGE_STORAGE), not in a cookie, until shown.
        self.message_user(
            request,
            f"Token {obj.prefix}… created for {obj.user}. Copy the secret now; it is shown only "
            f"this once: {secret}",
            level=messages.WARNING,
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        now = timezone.now()
        count = sum(api_token_revoke(token=token, now=now) for token in queryset)
        self.message_user(request, f"{count} token(s) revoked")


@admin.register(CalendarOverride)
class CalendarOverrideAdmin(admin.ModelAdmin):
    """Extra closures and special sessions; the feeds re-read them within REFRESH_SECONDS."""

    list_display = ("date", "exchange", "kind", "open", "close", "note")
    list_filter = ("exchange", "kind")
    search_fields = ("exchange", "note")
    date_hierarchy = "date"


@admin.register(RestBudget)
class RestBudgetAdmin(admin.ModelAdmin):
    """Read-only: the Fyers app's REST budget. The title gives today's count from the store
    every process shares (Redis when REDIS_URL is set: the rows below are then not used)."""

    list_display = ("app", "day_count", "day", "blocked_until", "updated")
    readonly_fields = ("app", "calls", "day", "day_count", "blocked_until", "seq", "updated")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        from market.budget import shared_store
        from market.conf import fyers_conf

        conf = fyers_conf()
        title = "Fyers REST budget"
        if conf.client_id:
            try:
                store = shared_store(conf.budget_store)
                title = (f"Fyers REST budget of {conf.client_id}: {store.used_today(conf.client_id):,} of "
                         f"{conf.rate_per_day:,} requests today (IST), {store.held(conf.client_id):,} symbol slots "
                         f"held ({store.name})")
            except Exception as exc:  # noqa: BLE001
                title = f"Fyers REST budget: the {conf.budget_store.split(':')[0]} store is unreachable ({type(exc).__name__})"
        return super().changelist_view(request, extra_context={**(extra_context or {}), "title": title})


# ---- Alerts (issue 13) and token scopes --------------------------------------------------


class OwnRowsMixin:
    """Superusers see every user's rows; other staff only their own (``owner`` lookup)."""

    owner = "user"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(**{self.owner: request.user})


@admin.register(Alert)
class AlertAdmin(OwnRowsMixin, admin.ModelAdmin):
    """Users' alerts. The webhook secret is never shown; ``state`` is the evaluator's."""

    list_display = ("id", "user", "symbol", "tf", "left", "op", "right", "trigger", "status", "reason", "webhook_set",
                    "created_at")
    list_filter = ("status", "trigger", "tf", "op")
    search_fields = ("user__username", "symbol", "message")
    list_select_related = ("user",)
    readonly_fields = ("user", "state", "reason", "created_at")
    fields = ("user", "symbol", "tf", "left", "op", "right", "trigger", "bars", "expires", "message", "webhook",
              "status", "reason", "state", "created_at")
    actions = ("pause", "resume")
    formfield_overrides = {Alert._meta.get_field("webhook").__class__: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        return False  # alerts are validated by the API (market.core.alerts.parse_condition)

    @admin.display(boolean=True, description="webhook")
    def webhook_set(self, obj):
        return bool(obj.webhook)

    @admin.action(description="Pause selected alerts")
    def pause(self, request, queryset):
        self.message_user(request, f"{queryset.filter(status='active').update(status='paused')} alert(s) paused")

    @admin.action(description="Resume selected alerts")
    def resume(self, request, queryset):
        n = queryset.filter(status="paused").update(status="active", state={})
        self.message_user(request, f"{n} alert(s) resumed")


@admin.register(AlertEvent)
class AlertEventAdmin(OwnRowsMixin, admin.ModelAdmin):
    """What fired, and how its webhook delivery went; read-only (the writer records them)."""

    owner = "alert__user"
    list_display = ("id", "alert", "symbol", "tf", "time", "value", "message", "delivery", "attempts", "last_error",
                    "caught_up")
    list_filter = ("delivery", "caught_up", "alert__status", "alert__trigger")
    search_fields = ("id", "symbol", "message", "alert__user__username")
    list_select_related = ("alert",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(NotifyChannel)
class NotifyChannelAdmin(OwnRowsMixin, admin.ModelAdmin):
    """Users' notification channels; an apprise URL is a secret (usually a token): shown by
    its scheme only, never editable here."""

    list_display = ("name", "user", "kind", "target_shown", "enabled", "created_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "user__username")
    list_select_related = ("user",)
    fields = ("user", "name", "kind", "target_shown", "enabled", "created_at")
    readonly_fields = ("user", "kind", "target_shown", "created_at")

    def has_add_permission(self, request):
        return False  # created through /api/channels, which checks the target

    @admin.display(description="target")
    def target_shown(self, obj):
        return notify_channel_as_dict(obj)["target"]


@admin.register(Layout)
class LayoutAdmin(admin.ModelAdmin):
    """Users' saved chart layouts (issue 12); the spec is edited on the page, shown here."""

    list_display = ("name", "owner", "updated", "opened")
    list_filter = ("owner",)
    search_fields = ("name", "owner__username")
    readonly_fields = ("created", "updated", "opened")
