from django.contrib import admin

from market.models import Symbol


@admin.register(Symbol)
class SymbolAdmin(admin.ModelAdmin):
    list_display = ("ticker", "name", "exchange", "kind", "active", "source", "tick_size", "lot_size")
    list_filter = ("active", "exchange", "kind", "source")
    list_editable = ("active",)
    search_fields = ("ticker", "name", "isin", "fytoken")
    actions = ("activate", "deactivate")

    @admin.action(description="Activate selected symbols")
    def activate(self, request, queryset):
        self.message_user(request, f"{queryset.update(active=True)} symbol(s) activated")

    @admin.action(description="Deactivate selected symbols")
    def deactivate(self, request, queryset):
        self.message_user(request, f"{queryset.update(active=False)} symbol(s) deactivated")
