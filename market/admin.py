from django.contrib import admin, messages
from django.utils import timezone

from market.models import ApiToken, Symbol
from market.tokens import api_token_revoke, api_token_save_new


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


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Personal read-only API tokens. The secret is shown once, in a message after "Save";
    only its digest is stored, so it can never be displayed again (market.tokens)."""

    list_display = ("name", "prefix_shown", "user", "created_at", "last_used_at", "expires_at", "revoked")
    list_filter = (RevokedFilter, "created_at")
    search_fields = ("name", "prefix", "user__username")
    actions = ("revoke",)
    # Never "digest": it is not the secret, but there is nothing to gain from showing it.
    readonly_fields = ("prefix_shown", "scope", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "expires_at") if request.user.is_superuser else ("name", "expires_at")
        return ("user", "name", "prefix_shown", "scope", "created_at", "last_used_at", "expires_at", "revoked_at")

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


from market.models import CalendarOverride  # noqa: E402 - appended with the calendar (issue 15)


@admin.register(CalendarOverride)
class CalendarOverrideAdmin(admin.ModelAdmin):
    """Extra closures and special sessions; the feeds re-read them within REFRESH_SECONDS."""

    list_display = ("date", "exchange", "kind", "open", "close", "note")
    list_filter = ("exchange", "kind")
    search_fields = ("exchange", "note")
    date_hierarchy = "date"
