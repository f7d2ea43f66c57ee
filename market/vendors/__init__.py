"""Broker integrations, one package per vendor (as cryptofeed keeps one per exchange); each owns a pure ``messages`` parser."""
