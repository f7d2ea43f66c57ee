"""A small Content-Security-Policy middleware (Django 5.2 has none built in).

The policy is ``settings.TICKCHART_CSP``. The pages carry no inline script or style: their
data comes in ``json_script`` blocks (data, not code), and lightweight-charts sets element
styles through the CSSOM, which CSP allows. ``connect-src 'self'`` is widened with the
request's own ``ws://``/``wss://`` origin, because browsers before CSP 3 did not count
WebSocket URLs as 'self'.

In DEBUG, error pages (status >= 400) get no policy: Django's technical 404/500 pages are
built from inline styles and scripts.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

from market.conf import access_conf

HEADER = "Content-Security-Policy"


def csp_for(request: HttpRequest, policy: str) -> str:
    try:
        host = request.get_host()
    except DisallowedHost:
        return policy
    sockets = f"wss://{host}" if request.is_secure() else f"ws://{host} wss://{host}"
    return policy.replace("connect-src 'self'", f"connect-src 'self' {sockets}", 1)


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """MiddlewareMixin keeps it usable in Django's async chain without a thread hop."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        policy = access_conf().csp
        if not policy or HEADER in response or (settings.DEBUG and response.status_code >= 400):
            return response
        response[HEADER] = csp_for(request, policy)
        return response
