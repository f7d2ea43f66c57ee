from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

if settings.TICKCHART_ADMIN_OTP:
    # django-otp's documented switch: the admin then also asks for a one-time password
    # (TOTP app or a static backup code) and lets only verified staff in (docs/security.md).
    from django_otp.admin import OTPAdminSite

    admin.site.__class__ = OTPAdminSite

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign-in for the chart pages, the API and the sockets (market.web.access); users are made
    # in the admin. Logout is a POST (Django 5), from the form on the login page.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("market.urls")),
]
